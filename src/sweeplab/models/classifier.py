"""The Classifier LightningModule: backbone + dropout + linear head, cross-entropy, L1, metrics."""

from __future__ import annotations

from typing import Callable

import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import (MulticlassAccuracy, MulticlassF1Score,
                                         MulticlassPrecision, MulticlassRecall)


class Classifier(pl.LightningModule):
    """`net` (backbone + head) is a plain nn.Module: it is what gets exported as the model."""

    def __init__(self, backbone: nn.Module, num_classes: int, dropout: float = 0.0,
                 label_smoothing: float = 0.0, l1: float = 0.0,
                 optimizer: Callable | None = None, scheduler: Callable | None = None):
        super().__init__()
        if not 0 <= dropout < 1:
            raise ValueError(f"model.dropout={dropout}: must be in [0, 1)")
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"model.label_smoothing={label_smoothing}: must be in [0, 1)")
        self.net = nn.Sequential(backbone, nn.Dropout(dropout), nn.Linear(backbone.out_features, num_classes))
        self.loss = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.l1 = l1
        self.optimizer_factory = optimizer or torch.optim.Adam
        self.scheduler_factory = scheduler
        metrics = MetricCollection({
            "acc": MulticlassAccuracy(num_classes, average="micro"),
            "precision": MulticlassPrecision(num_classes, average="macro"),
            "recall": MulticlassRecall(num_classes, average="macro"),
            "f1": MulticlassF1Score(num_classes, average="macro"),
        })
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.loss(self(x), y)
        if self.l1:
            loss = loss + self.l1 * sum(p.abs().sum() for p in self.parameters() if p.ndim > 1)
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test", self.test_metrics)

    def _evaluate(self, batch, stage: str, metrics: MetricCollection) -> None:
        x, y = batch
        logits = self(x)
        self.log(f"{stage}/loss", self.loss(logits, y), batch_size=len(y))
        metrics.update(logits, y)
        self.log_dict(metrics, batch_size=len(y))

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        total_steps = int(self.trainer.estimated_stepping_batches)
        scheduler = self.scheduler_factory(optimizer, total_steps=total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
