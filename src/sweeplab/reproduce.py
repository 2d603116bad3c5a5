"""`sweeplab reproduce RUN_ID`: rebuild a run from its MLflow record alone, rerun it, compare."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import open_dict

from sweeplab.errors import ConfigError
from sweeplab.tracking import lookup, provenance, store
from sweeplab.transfer.pinning import pin_source

if TYPE_CHECKING:
    from sweeplab.experiment import Result

# Wall-clock figures differ on every run; they are not part of what must reproduce.
UNTIMED = ("seconds", "per_second", "system/")
CHECKPOINT_SHA256 = "sweeplab.checkpoint.sha256"   # see models/pretrained_classifier.py


def reproduce(run_id: str, uri: str, check: bool, tolerance: float) -> int:
    client = store.open_client(uri)
    original = lookup.training_run(client, run_id)
    cfg = lookup.run_config(client, original)
    tags = original.data.tags
    with open_dict(cfg):
        cfg.tracking.uri = uri
        cfg.tracking.experiment = client.get_experiment(original.info.experiment_id).name
        pin_source(cfg, tags)   # finetune.init_from: the weights the run started from, even if an alias moved
        if tags.get(CHECKPOINT_SHA256) and "sha256" in cfg.model:
            cfg.model.sha256 = tags[CHECKPOINT_SHA256]   # a pretrained checkpoint: the same weights, or one line
        if tags.get("sweeplab.stopped") and tags.get("sweeplab.folds"):
            raise ConfigError(f"run {original.info.run_id} is a cross-validation stopped early "
                              f"({tags['sweeplab.stop_reason']}); reproduce that fold's run instead")
        if tags.get("sweeplab.stopped"):
            # A pruned trial stopped early: rerun the epochs it ran, so its metrics can be compared.
            cfg.trainer.max_epochs = len(client.get_metric_history(original.info.run_id, cfg.monitor.metric))
    _warn_about_code(tags)
    _match_threads(tags)
    print(f"reproducing run {original.info.run_id} ({original.info.run_name})", flush=True)
    # torch and Lightning are imported once the run is known to be one that can be rerun.
    from sweeplab.experiment import run_experiment
    from sweeplab.explain.run_end import explain_at_end

    result = run_experiment(cfg, tags={"sweeplab.reproduces": original.info.run_id},
                            run_name=f"reproduce-{original.info.run_name}", at_end=explain_at_end)
    return _compare(original.data.metrics, result, check, tolerance)


def _warn_about_code(tags: dict) -> None:
    commit, dirty, _ = provenance.git_state(Path.cwd())
    if commit is None:
        commit, dirty, _ = provenance.git_state(Path(__file__).parent)
    recorded = tags.get("mlflow.source.git.commit")
    if recorded and commit and recorded != commit:
        print(f"sweeplab: warning: the run was made at commit {recorded[:12]}, this checkout is at "
              f"{commit[:12]}", file=sys.stderr)
    if dirty or tags.get("sweeplab.git.dirty") == "true":
        print("sweeplab: warning: uncommitted changes (now or when the run was made; see its git.patch)",
              file=sys.stderr)
    for name in ("torch", "pytorch-lightning", "mlflow"):
        then, now = tags.get(f"sweeplab.version.{name}"), provenance.versions().get(name)
        if then and now and then != now:
            print(f"sweeplab: warning: {name} {then} made the run, {now} is installed", file=sys.stderr)


def _match_threads(tags: dict) -> None:
    # Float sums depend on how work is split between threads: use the run's thread count.
    threads = tags.get("sweeplab.torch_threads")
    if threads and threads.isdigit():
        import torch

        torch.set_num_threads(int(threads))


def _compare(original: dict[str, float], result: Result, check: bool, tolerance: float) -> int:
    keys = sorted(k for k in original.keys() & result.metrics.keys() if not any(u in k for u in UNTIMED))
    if not keys:
        raise ConfigError("the original run has no metrics in common with the reproduction")
    width = max(map(len, keys))
    worst = 0.0
    print(f"{'metric':<{width}}  {'original':>12}  {'reproduced':>12}  {'difference':>10}")
    for key in keys:
        a, b = original[key], result.metrics[key]
        difference = abs(a - b) if math.isfinite(a) and math.isfinite(b) else (0.0 if a == b or (a != a and b != b) else math.inf)
        worst = max(worst, difference)
        print(f"{key:<{width}}  {a:>12.6g}  {b:>12.6g}  {difference:>10.2g}")
    print(f"new run {result.run_id}; largest difference {worst:.3g} (tolerance {tolerance:g})")
    if check and worst > tolerance:
        print(f"sweeplab: reproduce check failed: a metric differs by {worst:.3g} > {tolerance:g}", file=sys.stderr)
        return 1
    return 0
