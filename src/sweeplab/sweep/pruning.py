"""The Lightning callback a sweep hands to run_experiment: report, prune, and refuse NaN metrics."""

from __future__ import annotations

import math

import pytorch_lightning as pl

from sweeplab.cross_validation import FoldAware
from sweeplab.experiment import OnEveryRank, StopRun


class TrialReporter(pl.Callback, OnEveryRank, FoldAware):
    """After each validation epoch: fail on a non-finite metric, report the objective, maybe prune.

    Rank 0 talks to Optuna and broadcasts its decision, so under DDP every rank stops together;
    the other ranks run a copy without the trial (metrics are reduced over all ranks before this
    hook, so a NaN stops every rank at the same point).

    Under cross-validation, fold k's epoch e is reported as step k * max_epochs + e: every trial's
    folds are the same examples (split_seed), so a pruner compares like with like at each step, and
    a hopeless trial is stopped inside its first fold, as it would be without folds.
    """

    def __init__(self, trial, metric: str, prune: bool = True):
        self.trial = trial
        self.metric = metric
        self.prune = prune
        self.first_step = 0

    def start_fold(self, fold: int, first_step: int) -> None:
        self.first_step = first_step

    def follower_spec(self) -> dict:
        return {"_target_": f"{type(self).__module__}.{type(self).__qualname__}", "trial": None,
                "metric": self.metric, "prune": self.prune}

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        epoch = trainer.current_epoch
        broken = {k: v for k, v in metrics.items() if not math.isfinite(v)}
        if broken:
            raise FloatingPointError(f"non-finite metric at epoch {epoch}: "
                                     + ", ".join(f"{k}={v}" for k, v in sorted(broken.items())))
        if self.metric not in metrics:
            raise KeyError(f"sweep.metric '{self.metric}' is not logged; logged: {', '.join(sorted(metrics))}")
        should_prune = False
        if trainer.is_global_zero and self.prune:
            self.trial.report(metrics[self.metric], step=self.first_step + epoch)
            should_prune = self.trial.should_prune()
        if trainer.strategy.broadcast(should_prune):
            raise StopRun("PRUNED", f"pruned after epoch {epoch} with {self.metric}={metrics[self.metric]:.6g}")
