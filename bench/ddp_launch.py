"""What starting the ranks of a 2-process DDP run costs per run: three launch designs side by side.

Designs that can serve a warm sweep worker running many DDP trials (rank 0 is the worker itself
in the first two; env:// rendezvous, as torchrun does):
- fresh: ranks 1..K-1 are new `python -m sweeplab.ranks.follower ENTRY HANDOFF` processes for each run;
- server (what sweeplab does, ranks/launch.py): they are forked for each run by the process's fork server
  (sweeplab.forks), which imported Lightning once and never touches CUDA;
- torch.multiprocessing: ranks 1..K-1 started for each run by `torch.multiprocessing.start_processes`
  with `start_method="forkserver"` and `sweeplab.experiment` preloaded in the standard library's
  forkserver (the `ProcessContext` it returns carries a failing rank's traceback);
- Lightning's `ddp_fork`: every rank, rank 0 included, is forked from the worker for each `fit`
  and `test` call.
Each is timed in one warm process on the same tiny work, beside a single-device run of the same
work, alternating; the printed figures are median(2 processes) - median(1 process): the launch's
own cost per run (the work itself is a few batches, so its split does not hide anything).

- fresh, server: `run_experiment` on digits_cnn, 2 epochs of 4 batches, `trainer=ddp_cpu` vs one device.
- ddp_fork: a plain Lightning fit + test of the same CNN on the same digits batches, `strategy=ddp_fork,
  devices=2` vs `devices=1` (no MLflow: fork cannot be used by sweeplab, see docs/design.md).

    python bench/ddp_launch.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings

import subprocess
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from sweeplab.config import compose_config
from sweeplab.experiment import run_experiment
from sweeplab.forks import client as forks
from sweeplab.models.classifier import Classifier
from sweeplab.models.cnn import CNN
from sweeplab.ranks import launch as ranks

SMALL = ["experiment=digits_cnn", "trainer.max_epochs=2", "trainer.limit_train_batches=4",
         "trainer.limit_val_batches=2", "trainer.limit_test_batches=2", "trainer.enable_progress_bar=false",
         "tracking.system_metrics_interval=null", "tracking.log_model=false"]


def sweeplab_run(folder: str, ddp: bool) -> float:
    cfg = compose_config([*SMALL, f"tracking.uri=sqlite:///{folder}/mlflow.db",
                          f"tracking.artifact_location={folder}/artifacts",
                          *(["trainer=ddp_cpu"] if ddp else ["trainer=cpu"])])
    started = time.perf_counter()
    run_experiment(cfg)
    return time.perf_counter() - started


class FreshStarter:
    """The "fresh" design: a new interpreter per follower rank instead of a fork of the fork server."""

    def fork(self, entry: str, handoff: str, *, env: dict[str, str], name: str) -> forks.Forked:
        process = subprocess.Popen([sys.executable, "-m", "sweeplab.ranks.follower", entry, handoff], env=env)
        return forks.Forked(process.pid, Path(handoff).parent / "no-exit-file")


def run_with(starter, folder: str) -> float:
    """The sweeplab DDP run with its follower ranks started by `starter` instead of the fork server."""
    served = ranks._rank_server
    ranks._rank_server = lambda entry: starter
    try:
        return sweeplab_run(folder, ddp=True)
    finally:
        ranks._rank_server = served


def _mp_follower(index: int, entry: str, handoff: str, env: dict[str, str]) -> None:
    """A torch.multiprocessing child: the forkserver's environment is its own start's, so the rank's is set here."""
    import pkgutil

    os.environ.clear()
    os.environ.update(env)
    code = pkgutil.resolve_name(entry)(handoff)
    if code:
        raise SystemExit(code)


class TorchMultiprocessingStarter:
    """The standard library's way: a forkserver with sweeplab.experiment preloaded, one ProcessContext per rank."""

    def fork(self, entry: str, handoff: str, *, env: dict[str, str], name: str) -> forks.Forked:
        context = torch.multiprocessing.start_processes(_mp_follower, args=(entry, handoff, env), nprocs=1,
                                                        join=False, start_method="forkserver")
        return forks.Forked(context.processes[0].pid, Path(handoff).parent / "no-exit-file")


def fork_run(ddp: bool) -> float:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images[:512], dtype=torch.float32).unsqueeze(1) / 16
    y = torch.tensor(digits.target[:512])
    loader = DataLoader(TensorDataset(x, y), batch_size=32)
    module = Classifier(CNN(in_channels=1, channels=[16, 32]), num_classes=10)
    trainer = pl.Trainer(accelerator="cpu", devices=2 if ddp else 1, strategy="ddp_fork" if ddp else "auto",
                         max_epochs=2, limit_train_batches=4, limit_val_batches=2, limit_test_batches=2,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0)
    started = time.perf_counter()
    trainer.fit(module, loader, loader)
    trainer.test(module, loader, verbose=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning_fabric").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    folder = tempfile.mkdtemp(prefix="bench-ddp-")
    # Warm-up: first-call costs (imports, torch._dynamo, MLflow's store schema) on both sides.
    # Each fork server's start (once per process, imports included) is paid here too.
    torch.multiprocessing.set_forkserver_preload(["sweeplab.experiment"])
    sweeplab_run(folder, ddp=False)
    sweeplab_run(folder, ddp=True)
    run_with(TorchMultiprocessingStarter(), folder)
    fork_run(ddp=False)
    times: dict[str, list[float]] = {k: [] for k in ("ours_1", "ours_2", "fresh_2", "mp_2", "fork_1", "fork_2")}
    for round_index in range(args.rounds):
        order = [("ours_1", lambda: sweeplab_run(folder, False)), ("ours_2", lambda: sweeplab_run(folder, True)),
                 ("fresh_2", lambda: run_with(FreshStarter(), folder)),
                 ("mp_2", lambda: run_with(TorchMultiprocessingStarter(), folder)),
                 ("fork_1", lambda: fork_run(False)), ("fork_2", lambda: fork_run(True))]
        if round_index % 2:
            order.reverse()
        for name, run in order:
            times[name].append(run())
            print(f"round {round_index}: {name} {times[name][-1]:.2f} s", file=sys.stderr, flush=True)
    median = {k: statistics.median(v) for k, v in times.items()}
    ours, fork = median["ours_2"] - median["ours_1"], median["fork_2"] - median["fork_1"]
    fresh = median["fresh_2"] - median["ours_1"]
    mp = median["mp_2"] - median["ours_1"]
    print(f"fresh process: {median['fresh_2']:.2f} s with 2 ranks vs {median['ours_1']:.2f} s on one device "
          f"(+{fresh:.2f} s a run)")
    print(f"fork server:   {median['ours_2']:.2f} s with 2 ranks vs {median['ours_1']:.2f} s on one device "
          f"(+{ours:.2f} s a run)")
    print(f"torch.multiprocessing forkserver: {median['mp_2']:.2f} s with 2 ranks vs {median['ours_1']:.2f} s "
          f"on one device (+{mp:.2f} s a run)")
    print(f"ddp_fork:      {median['fork_2']:.2f} s with 2 ranks vs {median['fork_1']:.2f} s on one device "
          f"(+{fork:.2f} s a run: fit and test each fork)")
    print(f"launch cost per run, fresh / fork server / torch.multiprocessing / ddp_fork: "
          f"{fresh:.2f} / {ours:.2f} / {mp:.2f} / {fork:.2f} s "
          f"({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
