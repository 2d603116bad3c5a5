"""Per-epoch learning rate, wall seconds and training throughput; the flush of buffered metrics, and
the mark that tells the batch logger which of Lightning's calls carry per-step values."""

from __future__ import annotations

import time

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.data import extract_batch_size

from sweeplab.tracking.metric_logger import MlflowBatchLogger


class EpochStats(pl.Callback):
    """`train/epoch_seconds` covers the epoch with its validation; samples/s counts training time only,
    and the samples of every rank under DDP."""

    def __init__(self):
        self.started = self.validation_started = self.validation_seconds = 0.0
        self.samples = 0

    def on_train_epoch_start(self, trainer, pl_module):
        self.started = time.perf_counter()
        self.validation_seconds = 0.0
        self.samples = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        # (inputs, targets) as sweeplab's data serves them; any other batch as Lightning counts it.
        self.samples += len(batch[-1]) if isinstance(batch, (list, tuple)) else extract_batch_size(batch)
        # Lightning logs the step's `on_step` values right after this hook; the mark lasts until
        # validation or the epoch's end, whose values are per epoch (Lightning's hook order).
        _mark_training_step(trainer, True)

    def on_validation_epoch_start(self, trainer, pl_module):
        _mark_training_step(trainer, False)
        self.validation_started = time.perf_counter()

    def on_validation_epoch_end(self, trainer, pl_module):
        self.validation_seconds += time.perf_counter() - self.validation_started

    def on_train_epoch_end(self, trainer, pl_module):
        _mark_training_step(trainer, False)
        # Lightning runs this epoch's validation before this hook.
        seconds = time.perf_counter() - self.started
        training = max(seconds - self.validation_seconds, 1e-9)
        samples = float(trainer.strategy.reduce(torch.tensor(float(self.samples), device=pl_module.device),
                                                reduce_op="sum")) if trainer.world_size > 1 else self.samples
        groups = trainer.optimizers[0].param_groups
        stats = {
            "train/lr": groups[0]["lr"],
            # every further group's own rate, named as Lightning's LearningRateMonitor names it (pg2, ...)
            **{f"train/lr/{group.get('name') or f'pg{i}'}": group["lr"] for i, group in enumerate(groups[1:], 2)},
            "train/epoch_seconds": seconds,
            "train/samples_per_second": samples / training,
        }
        for logger in trainer.loggers:
            logger.log_metrics({**stats, "epoch": trainer.current_epoch})
            if isinstance(logger, MlflowBatchLogger):
                logger.flush()


def _mark_training_step(trainer: pl.Trainer, on: bool) -> None:
    for logger in trainer.loggers:
        if isinstance(logger, MlflowBatchLogger):
            logger.in_training_step = on
