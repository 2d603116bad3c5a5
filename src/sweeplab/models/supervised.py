"""The shared shape of the LightningModules: backbone + dropout + linear head, L1, optimizer, schedule, figures."""

from __future__ import annotations

from typing import Callable

import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics import Metric, MetricCollection

from sweeplab.extras import ExampleInput

FIGURE_EXAMPLES = 4   # validation examples the backbone's figures show


class SupervisedModule(pl.LightningModule):
    """Subclasses give the loss and the metrics; batches are (inputs, targets).

    `net` (backbone + head) is a plain nn.Module taking one tensor: it is what gets exported
    as the model.
    """

    def __init__(self, backbone: nn.Module, outputs: int, loss: nn.Module, metrics: MetricCollection,
                 dropout: float = 0.0, l1: float = 0.0,
                 optimizer: Callable | None = None, scheduler: Callable | None = None):
        super().__init__()
        if not 0 <= dropout < 1:
            raise ValueError(f"model.dropout={dropout}: must be in [0, 1)")
        if l1 < 0:
            raise ValueError(f"model.l1={l1}: must be 0 or more")
        self.net = nn.Sequential(backbone, nn.Dropout(dropout), nn.Linear(backbone.out_features, outputs))
        self.loss = loss
        self.l1 = l1
        self.optimizer_factory = optimizer or torch.optim.Adam
        self.scheduler_factory = scheduler
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        self.train_loss, self.val_loss, self.test_loss = BatchMean(), BatchMean(), BatchMean()
        # The backbone's learning rate is optimizer.lr times this, in a second parameter group; None: one group.
        # Set by sweeplab.transfer from finetune.backbone_lr_scale, not a constructor argument (see conf/finetune/).
        self.backbone_lr_scale: float | None = None

    @property
    def backbone(self) -> nn.Module:
        return self.net[0]

    @property
    def head(self) -> nn.Module:
        return self.net[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    # Losses and metrics are accumulated as tensors and logged once an epoch: a `self.log` call
    # per step costs Lightning about a millisecond of bookkeeping, several percent of a small
    # model's step.
    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.loss(self(x), y)
        if self.l1:
            loss = loss + self.l1 * sum(p.abs().sum() for p in self.parameters() if p.ndim > 1)
        self.train_loss.update(loss, len(y))
        return loss

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test", self.test_metrics)

    def _evaluate(self, batch, stage: str, metrics: MetricCollection) -> None:
        x, y = batch
        output = self(x)
        getattr(self, f"{stage}_loss").update(self.loss(output, y), len(y))
        metrics.update(output, y)

    def on_train_epoch_end(self):
        self._log_epoch("train")

    def on_validation_epoch_end(self):
        self._log_epoch("val", self.val_metrics)

    def on_test_epoch_end(self):
        self._log_epoch("test", self.test_metrics)

    def _log_epoch(self, stage: str, metrics: MetricCollection | None = None) -> None:
        loss = getattr(self, f"{stage}_loss")
        if not loss.update_called:      # e.g. validation with limit_val_batches=0
            return
        values = {f"{stage}/loss": loss.compute(), **(metrics.compute() if metrics is not None else {})}
        loss.reset()
        if metrics is not None:
            metrics.reset()
        # torchmetrics already reduced these across DDP processes; averaging the equal values again
        # costs one all-reduce an epoch and keeps Lightning from warning that they were not.
        self.log_dict(values, sync_dist=True)

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self._parameter_groups())
        if self.backbone_lr_scale is not None:
            optimizer.param_groups[1]["lr"] *= self.backbone_lr_scale
        if self.scheduler_factory is None:
            return optimizer
        total_steps = int(self.trainer.estimated_stepping_batches)
        scheduler = self.scheduler_factory(optimizer, total_steps=total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def _parameter_groups(self):
        """One group of every parameter, or with backbone_lr_scale: the rest (group 0), then the backbone (group 1).
        Frozen parameters (finetune.freeze) are included: they get no gradient, so the optimizer skips them."""
        if self.backbone_lr_scale is None:
            return self.parameters()
        in_backbone = {id(p) for p in self.backbone.parameters()}
        # "name": Lightning's LearningRateMonitor convention for a parameter group; train/lr/backbone.
        return [{"params": [p for p in self.parameters() if id(p) not in in_backbone]},
                {"params": list(self.backbone.parameters()), "name": "backbone"}]

    @torch.no_grad()
    def figures(self, datamodule) -> dict:
        """Figures the backbone draws (e.g. a Transformer's attention) for a few validation examples,
        labelled with the data's words when it can decode them; {} when the backbone draws none."""
        draw = getattr(self.backbone, "figures", None)
        if draw is None or not isinstance(datamodule, ExampleInput):
            return {}
        x = datamodule.example_input(FIGURE_EXAMPLES).to(self.device)
        words = datamodule.decode(x) if hasattr(datamodule, "decode") else None
        was_training = self.training
        self.eval()
        try:
            return draw(x, words)
        finally:
            self.train(was_training)


class BatchMean(Metric):
    """Mean of per-batch values weighted by batch size, summed across processes under DDP.

    torchmetrics' MeanMetric either drops NaN or ignores weights; a diverged run must show NaN.
    """

    full_state_update = False

    def __init__(self):
        super().__init__()
        self.add_state("total", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, value: torch.Tensor, count: int) -> None:
        self.total += value.detach() * count
        self.count += count

    def compute(self) -> torch.Tensor:
        return self.total / self.count
