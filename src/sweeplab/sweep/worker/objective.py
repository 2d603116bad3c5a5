"""What a trial reports to Optuna: its best epoch's value of sweep.metric (objective: best), or its last."""

from __future__ import annotations

import math

import pytorch_lightning as pl

from sweeplab.cross_validation import FoldAware


class EpochValues(pl.Callback, FoldAware):
    """The sweep's metrics after each validation epoch (the values pruning sees, and that MLflow records
    at step = epoch; under DDP already reduced over all ranks).

    `best` is the epoch whose first metric is best in its direction (the earliest on a tie), with every
    metric's value at that epoch, so a multi-objective trial reports a point it really reached. It is
    defined by sweep.metric and sweep.direction alone: when `monitor.metric` (the kept checkpoint's)
    differs, the checkpoint's epoch may differ too. Under cross-validation the values are the mean,
    over folds, of each fold's best (or last) epoch.
    """

    def __init__(self, metrics: list[str], directions: list[str]):
        self.metrics = metrics
        self.directions = directions
        self.folds: list[list[list[float]]] = [[]]   # per fold, per epoch, per metric

    @property
    def epochs(self) -> list[list[float]]:
        return self.folds[-1]

    def start_fold(self, fold: int, first_step: int, last: bool) -> None:
        if fold > 0:
            self.folds.append([])

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        found = trainer.callback_metrics
        if all(m in found for m in self.metrics):
            self.epochs.append([float(found[m]) for m in self.metrics])

    def values(self, objective: str, final: dict[str, float]) -> list[float]:
        """The trial's values: `last` the run's final ones; `best` those of its best epoch (the final ones
        when the metrics are not seen after validation epochs, e.g. `test/acc`)."""
        if not all(self.folds):
            return [final.get(m, math.nan) for m in self.metrics]
        if objective == "last":
            chosen = [epochs[-1] for epochs in self.folds]
        else:
            pick = min if self.directions[0] == "minimize" else max
            chosen = [pick(epochs, key=lambda values: values[0]) for epochs in self.folds]
        return [sum(column) / len(column) for column in zip(*chosen)]
