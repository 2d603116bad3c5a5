"""The checkpoint's monitor metric must be one the module logs: checked after the first validation epoch."""

from __future__ import annotations

import pytorch_lightning as pl

from sweeplab.errors import ConfigError


class MonitorCheck(pl.Callback):
    """Fails the run with one line naming what the module does log, when `monitor.metric` is not
    among it (a user's module logs its own names: `val_loss`, not sweeplab's `val/acc`).

    Runs before the checkpoint callback and early stopping, whose own errors would come later or
    read less plainly; only the first validation epoch is checked, as the keys do not change.
    """

    def __init__(self, metric: str | None, module_name: str):
        self.metric = metric
        self.module_name = module_name
        self.checked = False

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.checked or trainer.sanity_checking or self.metric is None:   # null: the last epoch is kept
            return
        self.checked = True
        logged = sorted(trainer.callback_metrics)
        if self.metric not in logged:
            raise ConfigError(f"monitor.metric={self.metric} is not logged by {self.module_name}; it logs: "
                              f"{', '.join(logged) or 'nothing'}; set monitor.metric (and monitor.mode: min "
                              "or max) to one of these")
