"""Per-epoch learning rate, wall seconds and throughput, and the flush of buffered metrics."""

from __future__ import annotations

import time

import pytorch_lightning as pl


class EpochStats(pl.Callback):
    def __init__(self):
        self.started = 0.0
        self.samples = 0

    def on_train_epoch_start(self, trainer, pl_module):
        self.started = time.perf_counter()
        self.samples = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.samples += len(batch[-1])

    def on_train_epoch_end(self, trainer, pl_module):
        # Runs after this epoch's validation, so the seconds cover training and validation.
        seconds = time.perf_counter() - self.started
        stats = {
            "train/lr": trainer.optimizers[0].param_groups[0]["lr"],
            "train/epoch_seconds": seconds,
            "train/samples_per_second": self.samples / seconds if seconds > 0 else 0.0,
        }
        for logger in trainer.loggers:
            logger.log_metrics({**stats, "epoch": trainer.current_epoch})
            if hasattr(logger, "flush"):
                logger.flush()
