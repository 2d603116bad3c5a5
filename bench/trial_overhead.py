"""Fixed cost per sweep trial in a warm worker process (goal: at most 0.10 s, issue 12).

One process holds a real Optuna study (journal file) and a real SQLite MLflow store, both in a
temporary folder, with a parent run made by the sweep driver's own code. Each timed trial is what
a worker's loop does for one trial (sweep/worker/loop.py `work`): recover dead trials, take the slot
lock, count, ask, tag the trial with its worker, then `run_trial` (compose the trial's config, open
its nested MLflow run, Lightning fit + test on ONE batch each of train, val and test, checkpoint,
tell, close). The digits_cnn sweep is used with sampler=random and pruner=none, so each trial's
own compute is tiny. Beside each trial (alternating) the same work is timed bare: a plain torch
loop on the same network, hyper-parameters and batches (build net + Adam, one train step, one val
batch with loss and accuracy, one test batch), on batches loaded before the timer. The printed
figure is median(trial) - median(bare): everything a trial costs beyond its own compute, data
loading included. Two untimed warm-up trials (and bare runs) pay first-call costs first.

Lightning's INFO lines ("GPU available", "limit_train_batches", ...) and MLflow's system-metrics
start/stop lines are silenced unless --lightning-log is given; a real worker writes them to its log.

Torch runs on --threads CPU threads (default 1, what each worker of sweep.workers=2 gets on
2 cores): a tiny network's compute is then not at the mercy of a busy second core.

    python bench/trial_overhead.py [--trials 20] [--warmup 2] [--threads 1] [--lightning-log] [key=value ...]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from torch import nn

from sweeplab.config import compose_with_choices
from sweeplab.sweep import study as studies
from sweeplab.sweep.join import join
from sweeplab.sweep.settings import read_settings
from sweeplab.sweep.storage import slot_lock
from sweeplab.sweep.worker.loop import run_trial, trial_config
from sweeplab.tracking import store


def timed_trial(study, settings, overrides, parent_run_id, storage) -> tuple[float, float, object]:
    """One iteration of the worker loop; returns (whole seconds, run_trial seconds, frozen trial)."""
    started = time.perf_counter()
    studies.recover_dead_trials(study)
    with slot_lock(settings.storage, settings.study_name):
        studies.counts(study)
        trial = study.ask()
        trial.set_user_attr(studies.WORKER_ATTR, studies.worker_id())
    asked = time.perf_counter()
    outcome = run_trial(trial, study, settings, overrides, [], parent_run_id, storage)
    ended = time.perf_counter()
    if outcome.state.name != "COMPLETE":
        raise SystemExit(f"trial {outcome.number} ended {outcome.state.name}: {outcome.error}")
    return ended - started, ended - asked, study.trials[outcome.number]


def bare_batches(cfg):
    """The first batch of each split, as the trial's loaders give them (loaded outside the timer)."""
    torch.manual_seed(cfg.seed)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    return [next(iter(loader())) for loader in (datamodule.train_dataloader, datamodule.val_dataloader,
                                                 datamodule.test_dataloader)]


def bare_run(cfg, batches) -> float:
    """One train step, one val batch and one test batch on the trial's network, as a plain loop."""
    (x_train, y_train), val, test = batches
    started = time.perf_counter()
    torch.manual_seed(cfg.seed)
    net = instantiate(cfg.model).net
    optimizer = instantiate(cfg.optimizer)(net.parameters())
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.model.label_smoothing)
    net.train()
    optimizer.zero_grad(set_to_none=True)
    loss_fn(net(x_train), y_train).backward()
    optimizer.step()
    with torch.no_grad():
        net.eval()
        for x, y in (val, test):
            logits = net(x)
            loss_fn(logits, y).item()
            (logits.argmax(1) == y).float().mean().item()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="timed trials")
    parser.add_argument("--warmup", type=int, default=2, help="untimed trials first")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--lightning-log", action="store_true", help="keep Lightning's INFO lines")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for the sweep")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.lightning_log:
        for name in ("pytorch_lightning", "lightning.pytorch", "lightning.fabric", "mlflow.system_metrics"):
            logging.getLogger(name).setLevel(logging.WARNING)
    for key in [k for k in os.environ if k.startswith("MLFLOW_")]:
        del os.environ[key]  # $MLFLOW_TRACKING_URI would win over the temporary store
    folder = Path(tempfile.mkdtemp(prefix="sweeplab-bench-trial-"))
    overrides = [
        "sweep=digits_cnn", "sampler=random", "pruner=none", "trainer.max_epochs=1",
        "trainer.limit_train_batches=1", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
        "tracking.log_model=false", f"sweep.storage={folder}/optuna.journal",
        "sweep.study_name=bench_trial_overhead", f"sweep.n_trials={args.warmup + args.trials}",
        f"tracking.uri=sqlite:///{folder}/mlflow.db", f"tracking.artifact_location={folder}/artifacts",
        *args.overrides]
    settings = read_settings(*compose_with_choices(overrides))
    uri = store.tracking_uri(f"sqlite:///{folder}/mlflow.db")
    # What the driver does before it starts workers, outside every timer.
    joined = join(settings, overrides, uri)
    storage, parent_run_id = joined.storage, joined.parent_run_id
    # What a worker does when it starts: load the study with its own seeded sampler.
    study = studies.load(settings, storage, 0)
    print(f"torch threads: {torch.get_num_threads()}; stores in {folder}; {args.warmup} warm-up "
          f"trial(s), then {args.trials} timed, each beside a bare run of the same work; load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)

    whole, inner, bare = [], [], []
    for i in range(args.warmup + args.trials):
        seconds, run_seconds, frozen = timed_trial(study, settings, overrides, parent_run_id, storage)
        cfg = trial_config(overrides, [], settings, settings.space.overrides_for(frozen.params))
        bare_seconds = bare_run(cfg, bare_batches(cfg))
        if i < args.warmup:
            print(f"  warm-up {i + 1}: trial {seconds * 1000:7.1f} ms, bare {bare_seconds * 1000:6.1f} ms",
                  flush=True)
            continue
        whole.append(seconds)
        inner.append(run_seconds)
        bare.append(bare_seconds)
        print(f"  trial {frozen.number:3d} (batch {frozen.params['data.batch_size']:>2}): whole "
              f"{seconds * 1000:7.1f} ms (run_trial {run_seconds * 1000:7.1f} ms), bare "
              f"{bare_seconds * 1000:6.1f} ms", flush=True)

    # Pieces of a trial that the bare side does not have, timed once each for the record.
    cfg = trial_config(overrides, [], settings, settings.space.overrides_for(study.trials[-1].params))
    pieces = {}
    started = time.perf_counter()
    trial_config(overrides, [], settings, settings.space.overrides_for(study.trials[-1].params))
    pieces["compose the trial config"] = time.perf_counter() - started
    started = time.perf_counter()
    instantiate(cfg.data).setup("fit")
    pieces["load the data (DataModule setup)"] = time.perf_counter() - started
    from sweeplab.tracking import provenance
    started = time.perf_counter()
    provenance.git_state(Path.cwd())
    pieces["git state (provenance tags)"] = time.perf_counter() - started

    median_whole, median_inner, median_bare = (statistics.median(x) for x in (whole, inner, bare))
    overhead = median_whole - median_bare
    print(f"median whole trial {median_whole * 1000:.1f} ms (worker loop: recover, lock, count, ask, "
          f"run_trial); run_trial alone {median_inner * 1000:.1f} ms; bare 1-batch train/val/test "
          f"{median_bare * 1000:.1f} ms")
    print("one-off timings of some pieces: " + "; ".join(f"{k} {v * 1000:.1f} ms" for k, v in pieces.items()))
    print(f"load average now {os.getloadavg()[0]:.2f} (on a busy machine every piece above is slower)")
    print(f"fixed cost per trial = median whole - median bare; goal <= 0.10 s "
          f"({'met' if overhead <= 0.10 else 'NOT met'})")
    print(f"trial_overhead_seconds {overhead:.3f}")


if __name__ == "__main__":
    sys.exit(main())
