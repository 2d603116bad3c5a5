"""Epochs a new sweep needs to reach an earlier sweep's best, with and without `sweep.warm_start`.

Real `sweeplab sweep` commands on the digits CNN (4 epochs a trial, median pruning, one worker), in one
temporary folder (one Optuna journal, one SQLite MLflow store):

  source  --source-trials trials, sampler seed 0: its best value is the target; then for each seed
          S = 1 .. --seeds, two new studies over the same space, sampler seed S, at most --trials trials:
  cold    as they are;
  warm    with sweep.warm_start=source (all the source's complete trials seeded).

Epochs are counted from each study's own trials in trial-number order (seeded trials cost nothing
here and are left out): each trial counts the validation epochs it reported, so a pruned trial counts
the epochs it ran. The figure for cold and warm is the epochs used up to and including the first own
trial whose value reached the source's best, or "not reached" with the epochs of all --trials trials;
and the same for a value within --tolerance of it (the source's best is the top of a noisy draw).
The source's own epochs to its best are printed for scale. One seed on 360 validation images is
noisy (one image is 0.28 points of val/acc), hence 3 seeds by default. On 2 idle cores the source takes
about 20 s and each seed 30 s (2 minutes in all; about 4 times that with other jobs on the cores).

    python bench/warm_start.py [--seeds 3] [--source-trials 12] [--trials 8] [--tolerance 0.003] [key=value ...]
"""

from __future__ import annotations

import argparse
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
BASE = ["sweep=digits_cnn", "tracking.log_model=false", "tracking.log_checkpoint=false", "sweep.workers=1"]


def sweep(folder: Path, name: str, overrides: list[str]) -> optuna.Study:
    command = [SWEEPLAB, "sweep", *BASE, f"sweep.study_name={name}", *overrides]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    storage = JournalStorage(JournalFileBackend(str(folder / "mlruns" / "optuna.journal")))
    return optuna.load_study(study_name=name, storage=storage)


def own(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.trials if "sweeplab.seeded_from" not in t.user_attrs]


def own_best(study: optuna.Study) -> float:
    """The best val/acc among the study's own complete trials (study.best_value would count seeded ones)."""
    return max((t.values[0] for t in own(study) if t.state == TrialState.COMPLETE), default=float("nan"))


def epochs_to_reach(study: optuna.Study, target: float) -> tuple[int, int | None]:
    """(epochs used up to the first own trial whose value reached `target`, its place among the own trials);
    (all epochs, None) when none did."""
    used = 0
    for place, trial in enumerate(own(study), start=1):
        used += len(trial.intermediate_values)
        if trial.state == TrialState.COMPLETE and trial.values[0] >= target:
            return used, place
    return used, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="pairs of cold and warm sweeps, sampler seeds 1..N")
    parser.add_argument("--source-trials", type=int, default=12)
    parser.add_argument("--trials", type=int, default=8, help="at most this many trials for cold and warm")
    parser.add_argument("--tolerance", type=float, default=0.003,
                        help="the second target: the source's best minus this (0.003: one of 360 validation images)")
    parser.add_argument("overrides", nargs="*", help="more overrides for every sweep")
    args = parser.parse_args()
    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="sweeplab-bench-warm-"))
    source = sweep(folder, "source", [f"sweep.n_trials={args.source_trials}", "sweep.sampler.seed=0", *args.overrides])
    best = source.best_value
    targets = {"the source's best": best, f"within {args.tolerance:g} of it": best - args.tolerance}
    print(f"source: best val/acc {best:.4f} at trial {source.best_trial.number} of {len(source.trials)}, "
          f"after {epochs_to_reach(source, best)[0]} epochs ({time.monotonic() - started:.0f} s)", flush=True)
    figures = {(label, target): [] for label in ("cold", "warm") for target in targets}
    for seed in range(1, args.seeds + 1):
        later = [f"sweep.n_trials={args.trials}", f"sweep.sampler.seed={seed}", *args.overrides]
        for label, extra in (("cold", []), ("warm", ["sweep.warm_start=source"])):
            study = sweep(folder, f"{label}{seed}", [*later, *extra])
            shown = []
            for target, value in targets.items():
                used, place = epochs_to_reach(study, value)
                figures[label, target].append(used if place else None)
                shown.append(f"{target}: {used} epochs (trial {place})" if place
                             else f"{target}: not in {len(own(study))} trials ({used} epochs)")
            seeded = f", {len(study.trials) - len(own(study))} seeded" if extra else ""
            print(f"seed {seed} {label}: {'; '.join(shown)}; its best {own_best(study):.4f}{seeded} "
                  f"({time.monotonic() - started:.0f} s)", flush=True)
    for (label, target), found in figures.items():
        reached = [f for f in found if f is not None]
        mean = f"mean {statistics.mean(reached):.1f} epochs where reached" if reached else "never reached"
        print(f"{label} to reach {target}: {len(reached)} of {len(found)} seeds, {mean} "
              f"(per seed: {', '.join(str(f) if f is not None else '-' for f in found)})")


if __name__ == "__main__":
    main()
