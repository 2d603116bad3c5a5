"""What a trial reports to Optuna: its best epoch's value of sweep.metric (objective: best), or its last."""

from __future__ import annotations

import math

import pytorch_lightning as pl


class EpochValues(pl.Callback):
    """The sweep's metrics after each validation epoch (the values pruning sees, and that MLflow records
    at step = epoch; under DDP already reduced over all ranks).

    `best` is the epoch whose first metric is best in its direction (the earliest on a tie), with every
    metric's value at that epoch, so a multi-objective trial reports a point it really reached. It is
    defined by sweep.metric and sweep.direction alone: when `monitor.metric` (the kept checkpoint's)
    differs, the checkpoint's epoch may differ too.
    """

    def __init__(self, metrics: list[str], directions: list[str]):
        self.metrics = metrics
        self.directions = directions
        self.epochs: list[list[float]] = []

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        found = trainer.callback_metrics
        if all(m in found for m in self.metrics):
            self.epochs.append([float(found[m]) for m in self.metrics])

    def values(self, objective: str, final: dict[str, float]) -> list[float]:
        """The trial's values: `last` the run's final ones; `best` those of its best epoch (the final ones
        when the metrics are not seen after validation epochs, e.g. `test/acc`)."""
        if objective == "last" or not self.epochs:
            return [final.get(m, math.nan) for m in self.metrics]
        pick = min if self.directions[0] == "minimize" else max
        return pick(self.epochs, key=lambda values: values[0])
