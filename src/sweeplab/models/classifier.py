"""The Classifier LightningModule: backbone + dropout + linear head, cross-entropy, L1, metrics."""

from __future__ import annotations

from typing import Callable

from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import (MulticlassAccuracy, MulticlassF1Score,
                                         MulticlassPrecision, MulticlassRecall)

from sweeplab.models.supervised import SupervisedModule


class Classifier(SupervisedModule):
    """Logits for `num_classes` classes; `val/acc`, `val/f1`, `val/precision`, `val/recall` (and test/)."""

    def __init__(self, backbone: nn.Module, num_classes: int, dropout: float = 0.0,
                 label_smoothing: float = 0.0, l1: float = 0.0,
                 optimizer: Callable | None = None, scheduler: Callable | None = None):
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"model.label_smoothing={label_smoothing}: must be in [0, 1)")
        metrics = MetricCollection({
            "acc": MulticlassAccuracy(num_classes, average="micro"),
            "precision": MulticlassPrecision(num_classes, average="macro"),
            "recall": MulticlassRecall(num_classes, average="macro"),
            "f1": MulticlassF1Score(num_classes, average="macro"),
        })
        super().__init__(backbone, num_classes, nn.CrossEntropyLoss(label_smoothing=label_smoothing), metrics,
                         dropout=dropout, l1=l1, optimizer=optimizer, scheduler=scheduler)
