"""Sweep throughput with two worker processes against one, on this machine (goal: at least 1.8x).

Each run is the real command, `sweeplab sweep sweep=digits_cnn sampler=random pruner=none ...`, in
its own temporary folder (its own journal study, SQLite MLflow store and study name), with
sweep.workers=1 or 2 and the same fixed number of trials. Trials train the digits CNN on the full
digits data for --epochs epochs (a few seconds each). The batch size, the only swept param that
changes a trial's cost, is fixed (sweep.params.data.batch_size=32) so both sides run the same work;
--keep-batch-choice keeps it swept.

Throughput is read from the study itself: finished trials / (last datetime_complete - first
datetime_start), in trials per hour. So the driver's start-up (imports, study and parent run) and its
summary at the end are NOT counted, nor the first worker's imports; what IS counted: each worker's
first trial with its first-call costs, a second worker's start-up where it runs later than the
first's, and the tail where one worker has no trial left while the other finishes the last one.
The wall time of the whole command is printed too, and the median epoch time of a trial (from its
MLflow metrics) with the torch threads the driver gives each worker (CPUs // workers): on a shared
machine one worker's 2 threads can be far slower per epoch than two workers' 1 thread each.
Runs alternate 1 worker, 2 workers, for --rounds rounds; the ratio of median throughputs is the
last line printed.

    python bench/workers_scaling.py [--trials 8] [--rounds 2] [--epochs 3] [key=value ...]
"""

from __future__ import annotations

import argparse
import os
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


def run_sweep(workers: int, tag: str, args) -> dict:
    folder = Path(tempfile.mkdtemp(prefix=f"sweeplab-bench-workers{workers}-"))
    journal = folder / "optuna.journal"
    study_name = f"scale_{tag}_w{workers}"
    command = [
        SWEEPLAB, "sweep", "sweep=digits_cnn", "sampler=random", "pruner=none",
        f"sweep.n_trials={args.trials}", f"sweep.workers={workers}", f"sweep.storage={journal}",
        f"sweep.study_name={study_name}", f"trainer.max_epochs={args.epochs}",
        f"tracking.uri=sqlite:///{folder}/mlflow.db", f"tracking.artifact_location={folder}/artifacts",
        *([] if args.keep_batch_choice else ["sweep.params.data.batch_size=32"]), *args.overrides]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    started = time.perf_counter()
    with open(folder / "sweep.log", "w") as log:
        done = subprocess.run(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                              timeout=args.timeout)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"sweep with {workers} worker(s) failed (exit {done.returncode}); see {folder}/sweep.log")
    study = optuna.load_study(study_name=study_name, storage=JournalStorage(JournalFileBackend(str(journal))))
    finished = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))]
    if len(finished) < args.trials:
        raise SystemExit(f"sweep with {workers} worker(s) finished {len(finished)} of {args.trials} trials; "
                         f"see {folder}/sweep.log")
    first = min(t.datetime_start for t in finished)
    last = max(t.datetime_complete for t in finished)
    span = (last - first).total_seconds()
    per_trial = statistics.median((t.datetime_complete - t.datetime_start).total_seconds() for t in finished)
    return {"span": span, "wall": wall, "per_hour": len(finished) / span * 3600, "per_trial": per_trial,
            "epoch": epoch_seconds(folder, study_name), "folder": folder}


def epoch_seconds(folder: Path, study_name: str) -> float:
    """Median over trials of the last epoch's wall time (train/epoch_seconds, with its validation)."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{folder}/mlflow.db")
    experiment = client.get_experiment_by_name(f"sweep-{study_name}")
    runs = client.search_runs([experiment.experiment_id], "tags.`sweeplab.role` = 'trial'")
    found = [r.data.metrics["train/epoch_seconds"] for r in runs if "train/epoch_seconds" in r.data.metrics]
    return statistics.median(found) if found else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8, help="trials per sweep")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each side, alternating")
    parser.add_argument("--epochs", type=int, default=3, help="trainer.max_epochs of each trial")
    parser.add_argument("--keep-batch-choice", action="store_true",
                        help="keep data.batch_size swept (trial lengths then differ between runs)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed per sweep command")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for both sides")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; {args.trials} trials of {args.epochs} epochs on digits per sweep; "
          f"alternating 1 and 2 workers, {args.rounds} round(s); load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    results: dict[int, list[dict]] = {1: [], 2: []}
    stamp = time.strftime("%H%M%S")
    for round_ in range(args.rounds):
        for workers in (1, 2):
            found = run_sweep(workers, f"{stamp}_r{round_}", args)
            results[workers].append(found)
            print(f"  round {round_ + 1}, {workers} worker(s): {found['per_hour']:7.0f} trials/h "
                  f"(trials span {found['span']:6.1f} s, whole command {found['wall']:6.1f} s, "
                  f"median trial {found['per_trial']:5.2f} s, epoch {found['epoch']:5.2f} s, torch threads "
                  f"{max(1, (os.cpu_count() or 1) // workers)} per worker) in {found['folder']}", flush=True)
    one, two = (statistics.median(r["per_hour"] for r in results[w]) for w in (1, 2))
    speedup = two / one
    print(f"median throughput: 1 worker {one:.0f} trials/h, 2 workers {two:.0f} trials/h (first trial "
          "start to last trial end, from the study's timestamps; start-up of the command not counted)")
    print(f"load average now {os.getloadavg()[0]:.2f}; goal >= 1.8x ({'met' if speedup >= 1.8 else 'NOT met'})")
    print(f"workers_speedup {speedup:.2f}")


if __name__ == "__main__":
    sys.exit(main())
