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

    The step reported is the number of epochs trained so far (1 after the first epoch), not
    Lightning's 0-based epoch index: a pruner's resource is then counted in epochs, so Hyperband's
    `min_resource: 1` is a rung after the first epoch and `max_resource: max_epochs` the last report.
    With the index, Optuna's halving pruners could never stop a trial after its first epoch (their
    first rung is at step >= 1), and on a 4-epoch sweep their second rung fell on the last epoch,
    where pruning saves nothing.

    Under cross-validation, fold k's n-th epoch is reported as step k * max_epochs + n: every trial's
    folds are the same examples (split_seed), so a pruner compares like with like at each step, and
    a hopeless trial is stopped inside its first fold, as it would be without folds.

    The trial's last epoch (of its last fold) is reported but the pruner is not asked: stopping there
    saves no training and would throw away a finished result (Hyperband's top rung can fall on it).
    """

    def __init__(self, trial, metric: str, prune: bool = True):
        self.trial = trial
        self.metric = metric
        self.prune = prune
        self.first_step = 0
        self.last_fold = True

    def start_fold(self, fold: int, first_step: int, last: bool) -> None:
        self.first_step = first_step
        self.last_fold = last

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
        finished = self.last_fold and trainer.max_epochs is not None and epoch + 1 >= trainer.max_epochs
        if trainer.is_global_zero and self.prune:
            self.trial.report(metrics[self.metric], step=self.first_step + epoch + 1)
            should_prune = not finished and self.trial.should_prune()
        if trainer.strategy.broadcast(should_prune):
            raise StopRun("PRUNED", f"pruned after epoch {epoch + 1} (step {self.first_step + epoch + 1}) "
                                    f"with {self.metric}={metrics[self.metric]:.6g}")
