"""The Regressor LightningModule: backbone + dropout + linear head, mean squared error, L1, metrics."""

from __future__ import annotations

from typing import Callable

from torch import nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection

from sweeplab.models.supervised import SupervisedModule


class Regressor(SupervisedModule):
    """`outputs` real values per example (a forecast's horizon); `val/mse`, `val/rmse`, `val/mae` (and test/).

    The metrics pool every output of every example, so `rmse` is the root of the mean over all
    of them, in the units of the targets the data module serves.
    """

    def __init__(self, backbone: nn.Module, outputs: int = 1, dropout: float = 0.0, l1: float = 0.0,
                 optimizer: Callable | None = None, scheduler: Callable | None = None):
        if outputs < 1:
            raise ValueError(f"model.outputs={outputs}: must be at least 1")
        metrics = MetricCollection({
            "mse": MeanSquaredError(),
            "rmse": MeanSquaredError(squared=False),
            "mae": MeanAbsoluteError(),
        })
        super().__init__(backbone, outputs, nn.MSELoss(), metrics,
                         dropout=dropout, l1=l1, optimizer=optimizer, scheduler=scheduler)
