"""A user callback for tests/test_transfer_e2e.py: what the module's weights and optimizer were during a CLI run."""

from __future__ import annotations

import json
from pathlib import Path

import pytorch_lightning as pl
import torch


class SaveWeights(pl.Callback):
    """start.pt: the state dict when training starts (after finetune's loading and freezing); epoch<N>.pt after
    each training epoch; optimizer.json: each parameter group's learning rate and parameter names."""

    def __init__(self, folder: str):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        torch.save(_copy(pl_module), self.folder / "start.pt")
        names = {id(p): n for n, p in pl_module.named_parameters()}
        groups = [{"lr": group["lr"], "params": [names[id(p)] for p in group["params"]]}
                  for group in trainer.optimizers[0].param_groups]
        (self.folder / "optimizer.json").write_text(json.dumps(groups))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        torch.save(_copy(pl_module), self.folder / f"epoch{trainer.current_epoch}.pt")


def _copy(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}
