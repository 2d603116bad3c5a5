"""Epochs a pruned TPE sweep needs to match the best of an unpruned random sweep (goal: at most 1/4; and the pruned sweep spending at most 1/2 of the epochs).

For each seed, two real `sweeplab sweep` commands run, each in its own temporary folder (journal
study, SQLite MLflow store), over the same search space (the sweep file's params) and budget:

  A. sampler=random pruner=none, --trials trials, every one trained for the full --epochs;
  B. the sweep file's own sampler and pruner (what `sweeplab sweep` ships: TPE + Hyperband for
     fashion_cnn), at most --tpe-trials trials; --pruner/--sampler choose others.

Epochs consumed are counted from each study in trial-number order (the order trials were asked
for): a complete trial counts trainer.max_epochs, a pruned (or failed) one the number of
intermediate values it reported (one per validation epoch). The figure is the epochs B had used,
up to and including the first trial whose value reached A's best, divided by A's total epochs.
If B never reaches it, that is said, and B's total / A's total is given as a lower bound ('>').
With several --seeds the mean and the spread over seeds are printed; the last line is the mean.

Each seed seeds A's sampler with S and B's with S + --tpe-seed-offset: with the same seed, TPE's
random start-up trials would draw exactly A's first trials (workers offset seeds the same way).
Both sweeps use --workers worker processes (2 by default) to save time; the objective is the
sweep's metric (val/acc). Noise: 2,000 validation images give about 0.7 points of standard error;
use --val-size larger and several seeds for a figure to rely on. Slow: about 15-25 minutes per
seed on 2 cores with the defaults. --quick runs the digits sweep with few trials, only to check
that the script works.

To compare pruners without paying for the random arm again: --random-from LOG takes each seed's
random sweep from the folder an earlier run of this script printed in LOG (same seeds, space and
size), and --pruned KEY=VALUE (repeatable) overrides sweep B alone, e.g.
`--pruner halving --pruned sweep.pruner.reduction_factor=3 --random-from bench/results/sweep_efficiency_3seeds.log`.

    python bench/sweep_efficiency.py [--seeds 1] [--trials 30] [--tpe-trials 30] [--epochs 4]
                                     [--train-size 8000] [--val-size 2000] [--quick] [key=value ...]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

SWEEPLAB = str(Path(sys.executable).parent / "sweeplab")


def run_sweep(label: str, overrides: list[str], timeout: float) -> tuple[optuna.Study, float, Path]:
    folder = Path(tempfile.mkdtemp(prefix=f"sweeplab-bench-{label}-"))
    journal = folder / "optuna.journal"
    study_name = f"efficiency_{label}"
    command = [SWEEPLAB, "sweep", *overrides, f"sweep.storage={journal}", f"sweep.study_name={study_name}",
               f"tracking.uri=sqlite:///{folder}/mlflow.db", f"tracking.artifact_location={folder}/artifacts"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    started = time.perf_counter()
    with open(folder / "sweep.log", "w") as log:
        log.write(" ".join(command) + "\n")
        log.flush()
        done = subprocess.run(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"sweep {label} failed (exit {done.returncode}); see {folder}/sweep.log")
    return load_study(folder), wall, folder


def load_study(folder: Path) -> optuna.Study:
    storage = JournalStorage(JournalFileBackend(str(folder / "optuna.journal")))
    return optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)


def recorded_random(log: Path, seed: int) -> Path:
    """The folder of seed `seed`'s random sweep, as an earlier run printed it in `log`."""
    found = re.search(rf"seed {seed}: random sweep .*?\((?:\d+) s, (/\S+?)\)", log.read_text())
    if not found or not (Path(found.group(1)) / "optuna.journal").exists():
        raise SystemExit(f"{log}: no random sweep of seed {seed} whose folder still exists")
    return Path(found.group(1))


def epochs_of(trial: optuna.trial.FrozenTrial, max_epochs: int) -> int:
    if trial.state == TrialState.COMPLETE:
        return max_epochs
    return len(trial.intermediate_values)  # pruned or failed: the epochs it got through


def history(study: optuna.Study, max_epochs: int) -> list[tuple[int, int, float | None]]:
    """(trial number, cumulative epochs, value or None) in trial-number order."""
    rows, total = [], 0
    for trial in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        if not trial.state.is_finished():
            continue
        total += epochs_of(trial, max_epochs)
        rows.append((trial.number, total, trial.value if trial.state == TrialState.COMPLETE else None))
    return rows


def one_seed(seed: int, args, base: list[str]) -> tuple[float, bool]:
    random_overrides = [*base, "sampler=random", "pruner=none", f"sweep.n_trials={args.trials}",
                        f"sweep.sampler.seed={seed}"]
    tpe_seed = seed + args.tpe_seed_offset
    chosen = [f"sampler={args.sampler}"] * bool(args.sampler) + [f"pruner={args.pruner}"] * bool(args.pruner)
    tpe_overrides = [*base, *chosen, f"sweep.n_trials={args.tpe_trials}", f"sweep.sampler.seed={tpe_seed}",
                     *args.pruned]
    stamp = time.strftime("%H%M%S")
    if args.random_from:
        random_folder = recorded_random(args.random_from, seed)
        random_study, random_wall = load_study(random_folder), 0.0
    else:
        random_study, random_wall, random_folder = run_sweep(f"random_s{seed}_{stamp}", random_overrides, args.timeout)
    random_rows = history(random_study, args.epochs)
    values = [v for _, _, v in random_rows if v is not None]
    if not values:
        raise SystemExit(f"the random sweep has no complete trial; see {random_folder}/sweep.log")
    target, random_total = max(values), random_rows[-1][1]
    print(f"  seed {seed}: random sweep {len(random_rows)} trials, {random_total} epochs, best {target:.4f} "
          f"({random_wall:.0f} s, {random_folder})", flush=True)
    tpe_study, tpe_wall, tpe_folder = run_sweep(f"tpe_s{seed}_{stamp}", tpe_overrides, args.timeout)
    tpe_rows = history(tpe_study, args.epochs)
    tpe_total = tpe_rows[-1][1] if tpe_rows else 0
    states = {s.name: sum(t.state == s for t in tpe_study.trials) for s in (TrialState.COMPLETE, TrialState.PRUNED,
                                                                            TrialState.FAIL)}
    tpe_values = [v for _, _, v in tpe_rows if v is not None]
    tpe_best = max(tpe_values) if tpe_values else float("nan")
    print(f"  seed {seed}: pruned sweep (seed {tpe_seed}) {len(tpe_rows)} trials ({states['COMPLETE']} complete, "
          f"{states['PRUNED']} pruned, {states['FAIL']} failed), {tpe_total} epochs, best {tpe_best:.4f} "
          f"({tpe_wall:.0f} s, {tpe_folder})", flush=True)
    reached = next(((number, epochs) for number, epochs, value in tpe_rows if value is not None and value >= target),
                   None)
    if reached is None:
        ratio = tpe_total / random_total
        print(f"  seed {seed}: TPE never reached {target:.4f} in {len(tpe_rows)} trials; "
              f"its total epochs / random's = {tpe_total}/{random_total} = {ratio:.3f}, so the ratio is > {ratio:.3f}",
              flush=True)
        return ratio, False
    number, epochs = reached
    ratio = epochs / random_total
    print(f"  seed {seed}: TPE reached {target:.4f} at trial {number}, after {epochs} epochs: "
          f"{epochs}/{random_total} = {ratio:.3f}", flush=True)
    return ratio, True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1; mean and spread when > 1")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--sweep", default="fashion_cnn", help="the sweep file (sweeps/NAME.yaml)")
    parser.add_argument("--trials", type=int, default=30, help="trials of the random, unpruned sweep")
    parser.add_argument("--tpe-trials", type=int, default=30, help="cap on the pruned sweep's trials")
    parser.add_argument("--epochs", type=int, default=4, help="trainer.max_epochs (hyperband's max resource)")
    parser.add_argument("--train-size", type=int, default=8000, help="data.train_size (fashion only)")
    parser.add_argument("--val-size", type=int, default=2000, help="data.val_size (fashion only)")
    parser.add_argument("--workers", type=int, default=2, help="sweep.workers for both sweeps")
    parser.add_argument("--sampler", default=None, help="sampler group for sweep B (default: the sweep file's)")
    parser.add_argument("--pruner", default=None, help="pruner group for sweep B (default: the sweep file's)")
    parser.add_argument("--pruned", action="append", default=[], metavar="KEY=VALUE",
                        help="an override for sweep B alone (repeatable), e.g. sweep.pruner.reduction_factor=3")
    parser.add_argument("--random-from", type=Path, default=None, metavar="LOG",
                        help="take each seed's random sweep from an earlier run's log instead of running it")
    parser.add_argument("--tpe-seed-offset", type=int, default=1000,
                        help="TPE's sampler seed is the seed plus this, so its start-up draws differ from random's")
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="seconds allowed per sweep command")
    parser.add_argument("--quick", action="store_true",
                        help="digits_cnn, 6 trials each side, 3 epochs: checks the script, measures nothing")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for both sweeps")
    args = parser.parse_args()
    if args.quick:
        args.sweep, args.trials, args.tpe_trials, args.epochs = "digits_cnn", 6, 6, 3
    base = [f"sweep={args.sweep}", f"trainer.max_epochs={args.epochs}", f"sweep.workers={args.workers}"]
    if args.sweep.startswith("fashion"):
        base += [f"data.train_size={args.train_size}", f"data.val_size={args.val_size}"]
    base += args.overrides
    print(f"{args.sweep}: random (pruner=none) {args.trials} trials vs the pruned sweep (cap {args.tpe_trials}), "
          f"{args.epochs} epochs max a trial, {args.workers} workers each; overrides: {' '.join(base)}"
          + ("  [--quick: a check of the script, not a measurement]" if args.quick else ""), flush=True)
    ratios, all_reached = [], True
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        ratio, reached = one_seed(seed, args, base)
        ratios.append(ratio)
        all_reached &= reached
    bound = "" if all_reached else ">"
    mean = statistics.mean(ratios)
    if len(ratios) > 1:
        print(f"over {len(ratios)} seeds: mean {bound}{mean:.3f}, sd {statistics.stdev(ratios):.3f}, "
              f"min {min(ratios):.3f}, max {max(ratios):.3f}"
              + ("" if all_reached else " (a seed that never reached the target counts its lower bound)"))
    print("epochs_ratio = the pruned sweep's epochs until its best first reached the random sweep's best / the random "
          f"sweep's total epochs; goal <= 1/4 ({'met' if all_reached and mean <= 1 / 4 else 'NOT met'})")
    print(f"epochs_ratio {bound}{mean:.3f}")


if __name__ == "__main__":
    sys.exit(main())
