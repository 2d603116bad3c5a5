"""Table and plot of a finished `bench/sweep_efficiency.py` run, read from its log and the studies it kept.

For every seed: the random sweep's best and total epochs, the pruned TPE sweep's epochs until it first
reached that best (goal: at most 1/4 of random's total, mean over seeds), its total epochs and best (goal:
at most 1/2 of random's total for an equal or better best); and a plot of best value so far against
epochs consumed, both arms, every seed.

    python bench/sweep_efficiency_plot.py bench/results/sweep_efficiency_3seeds.log [--out bench/results/sweep_efficiency.png]
"""

from __future__ import annotations

import argparse
import re
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sweep_efficiency import history, load_study  # noqa: E402   (this folder is on sys.path when run as a script)

FOLDER = re.compile(r"seed (\d+): (random sweep|TPE\+hyperband|pruned sweep).*?\((?:\d+) s, (/\S+?)\)")


def arms(log: str) -> dict[int, dict[str, Path]]:
    """seed -> {"random": folder, "tpe": folder}, from the lines the benchmark printed."""
    found: dict[int, dict[str, Path]] = {}
    for seed, arm, folder in FOLDER.findall(log):
        found.setdefault(int(seed), {})["random" if arm.startswith("random") else "tpe"] = Path(folder)
    return {seed: pair for seed, pair in found.items() if len(pair) == 2}


def best_so_far(rows) -> tuple[list[int], list[float]]:
    epochs, best, value = [], [], float("-inf")
    for _, total, v in rows:
        if v is not None:
            value = max(value, v)
        if value > float("-inf"):
            epochs.append(total)
            best.append(value)
    return epochs, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path)
    parser.add_argument("--out", type=Path, default=Path("bench/results/sweep_efficiency.png"))
    parser.add_argument("--epochs", type=int, default=4, help="trainer.max_epochs the benchmark ran with")
    parser.add_argument("--label", default="TPE + Hyperband", help="the pruned arm's name in the plot")
    args = parser.parse_args()
    seeds = arms(args.log.read_text())
    if not seeds:
        raise SystemExit(f"{args.log}: no seed with both sweeps finished")
    figure, axis = plt.subplots(figsize=(8, 5))
    reach, spend = [], []
    print("seed  random best  random epochs  TPE epochs to reach it  ratio   TPE total  TPE best  total ratio")
    for i, (seed, pair) in enumerate(sorted(seeds.items())):
        rows = {arm: history(load_study(folder), args.epochs) for arm, folder in pair.items()}
        target = max(v for _, _, v in rows["random"] if v is not None)
        random_total, tpe_total = rows["random"][-1][1], rows["tpe"][-1][1]
        tpe_best = max((v for _, _, v in rows["tpe"] if v is not None), default=float("nan"))
        reached = next((e for _, e, v in rows["tpe"] if v is not None and v >= target), None)
        ratio = (reached if reached is not None else tpe_total) / random_total
        reach.append(ratio)
        spend.append(tpe_total / random_total)
        print(f"{seed:>4}  {target:11.4f}  {random_total:13d}  {reached if reached is not None else 'never':>22}  "
              f"{'' if reached is not None else '>'}{ratio:.3f}  {tpe_total:9d}  {tpe_best:8.4f}  {tpe_total / random_total:.3f}")
        colour = f"C{i}"
        for arm, style in (("random", "-"), ("tpe", "--")):
            x, y = best_so_far(rows[arm])
            axis.step(x, y, style, where="post", color=colour,
                      label=f"seed {seed}, {'random, no pruning' if arm == 'random' else args.label}")
    print(f"mean over {len(reach)} seeds: reach ratio {statistics.mean(reach):.3f}"
          + (f" ± {statistics.stdev(reach):.3f}" if len(reach) > 1 else "")
          + f" (goal <= 0.25); total ratio {statistics.mean(spend):.3f}"
          + (f" ± {statistics.stdev(spend):.3f}" if len(spend) > 1 else "") + " (goal <= 0.5)")
    axis.set_xlabel("epochs consumed (trials in the order they were asked for)")
    axis.set_ylabel("best val/acc so far")
    axis.set_title("Pruned TPE vs random search, fashion_cnn space")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(args.out, dpi=110)
    print(f"plot: {args.out}")


if __name__ == "__main__":
    main()
