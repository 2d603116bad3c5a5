"""What a module's own configure_optimizers built, recorded as the run's optimizer.* and scheduler.* params."""

from __future__ import annotations

import json
from typing import Callable

import pytorch_lightning as pl
import torch


class LogBuiltOptimizer(pl.Callback):
    """Once training starts (the optimizers are built), hands `log_params` the optimizer's class and each
    parameter group's hyper-parameters (`optimizer.lr`; a second group's `optimizer.pg2.lr`), and the
    scheduler's class and interval: for a LightningModule that makes its own optimizer, this is what ran."""

    def __init__(self, log_params: Callable[[dict[str, str]], None]):
        self.log_params = log_params

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.log_params(described(trainer))


def described(trainer: pl.Trainer) -> dict[str, str]:
    found: dict[str, str] = {}
    for i, optimizer in enumerate(trainer.optimizers):
        prefix = "optimizer" if i == 0 else f"optimizer{i + 1}"
        found[f"{prefix}._target_"] = _class_path(type(optimizer))
        for j, group in enumerate(optimizer.param_groups):
            group_prefix = prefix if j == 0 else f"{prefix}.pg{j + 1}"
            for key, value in group.items():
                if key != "params":
                    found[f"{group_prefix}.{key}"] = _text(value)
    for i, config in enumerate(trainer.lr_scheduler_configs):
        prefix = "scheduler" if i == 0 else f"scheduler{i + 1}"
        found[f"{prefix}._target_"] = _class_path(type(config.scheduler))
        found[f"{prefix}.interval"] = config.interval
    return found


def _class_path(cls: type) -> str:
    """torch.optim.SGD rather than torch.optim.sgd.SGD: the name a config's `_target_` would give."""
    for public in (torch.optim, torch.optim.lr_scheduler):
        if getattr(public, cls.__name__, None) is cls:
            return f"{public.__name__}.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(
        value.item() if isinstance(value, torch.Tensor) else value, default=str)
