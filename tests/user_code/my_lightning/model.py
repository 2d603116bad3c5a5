"""A plain LightningModule: an MLP classifier that makes its own optimizer and logs its own metrics."""

import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F


class DigitsMLP(pl.LightningModule):
    def __init__(self, in_features: int = 64, hidden: int = 32, num_classes: int = 10, lr: float = 0.1):
        super().__init__()
        self.save_hyperparameters()
        self.layers = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.layers(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log_dict(self._scores(batch, "val"))

    def test_step(self, batch, batch_idx):
        self.log_dict(self._scores(batch, "test"))

    def _scores(self, batch, stage):
        x, y = batch
        logits = self(x)
        return {f"{stage}_loss": F.cross_entropy(logits, y),
                f"{stage}_acc": (logits.argmax(dim=1) == y).float().mean()}

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)
