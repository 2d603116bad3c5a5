"""overhead.py's user module: a plain LightningModule (no sweeplab base) that calls `self.log` every step.

It trains the very network of the fashion_cnn preset (same config keys, so the same `_target_` swap
builds it) with its own Adam, and logs the training loss each step and its validation and test scores
each epoch, as Lightning's tutorials do: what a user's own code costs on sweeplab's path.
"""

import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F


class StepLogging(pl.LightningModule):
    def __init__(self, backbone: nn.Module, num_classes: int, dropout: float = 0.0, label_smoothing: float = 0.0,
                 l1: float = 0.0, lr: float = 1e-3):
        super().__init__()
        self.net = nn.Sequential(backbone, nn.Dropout(dropout), nn.Linear(backbone.out_features, num_classes))
        self.label_smoothing = label_smoothing
        self.lr = lr

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y, label_smoothing=self.label_smoothing)
        self.log("train_loss", loss)     # in training_step: on_step=True, every step
        return loss

    def validation_step(self, batch, batch_idx):
        self.log_dict(self._scores(batch, "val"))

    def test_step(self, batch, batch_idx):
        self.log_dict(self._scores(batch, "test"))

    def _scores(self, batch, stage):
        x, y = batch
        logits = self(x)
        return {f"{stage}_loss": F.cross_entropy(logits, y), f"{stage}_acc": (logits.argmax(1) == y).float().mean()}

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)
