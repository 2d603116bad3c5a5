"""finetune.freeze / unfreeze_at_epoch: parameters kept fixed by name pattern, through Lightning's BaseFinetuning."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Protocol, runtime_checkable

import pytorch_lightning as pl
from pytorch_lightning.callbacks import BaseFinetuning
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.optim import Optimizer

from sweeplab.errors import ConfigError

SHOWN = 6   # parameter names listed when a pattern matches none


@runtime_checkable
class HasBackbone(Protocol):
    """A module with a feature extractor `backbone` (sweeplab's models; Lightning's BackboneFinetuning wants one)."""

    backbone: nn.Module


def matching_parameters(module: nn.Module, patterns: tuple[str, ...]) -> list[str]:
    """Names (as in module.named_parameters()) that any glob pattern matches; `backbone.*` also names the
    parameters of `module.backbone` when it has one (in sweeplab's models it is `net.0`).
    A pattern that matches nothing is a ConfigError that lists some names."""
    aliases = _backbone_aliases(module)
    names = {name: (name, aliases.get(id(p), name)) for name, p in module.named_parameters()}
    matched: dict[str, None] = {}
    for pattern in patterns:
        found = [name for name, spellings in names.items() if any(fnmatchcase(s, pattern) for s in spellings)]
        if not found:
            listed = list(dict.fromkeys(s for spellings in names.values() for s in spellings))
            more = ", ..." if len(listed) > SHOWN else ""
            raise ConfigError(f"finetune.freeze: {pattern!r} matches no parameter of {type(module).__name__}; "
                              f"its parameters are named {', '.join(listed[:SHOWN])}{more}")
        matched.update(dict.fromkeys(found))
    return list(matched)


def _backbone_aliases(module: nn.Module) -> dict[int, str]:
    if not (isinstance(module, HasBackbone) and isinstance(module.backbone, nn.Module)):
        return {}
    return {id(p): f"backbone.{name}" for name, p in module.backbone.named_parameters()}


class FreezeParameters(BaseFinetuning):
    """Keeps the named parameters fixed until `unfreeze_at_epoch` (None: for good).

    Frozen parameters stay in the optimizer when the module put them there (sweeplab's models do, so the
    parameter groups, their learning rates and schedules never change); they get no gradient, so the
    optimizer skips them. A module whose configure_optimizers leaves them out (filtering on requires_grad,
    as BaseFinetuning documents) gets them as a new parameter group at the first group's learning rate.
    Batch-norm layers whose weights are all frozen also keep their running statistics (BaseFinetuning.freeze_module).
    """

    def __init__(self, names: list[str], unfreeze_at_epoch: int | None = None):
        super().__init__()
        self.names = names
        self.unfreeze_at_epoch = unfreeze_at_epoch

    def freeze_before_training(self, pl_module: pl.LightningModule) -> None:
        parameters = dict(pl_module.named_parameters())
        for name in self.names:
            parameters[name].requires_grad = False
        for norm in self._frozen_norms(pl_module):
            self.freeze_module(norm)

    def finetune_function(self, pl_module: pl.LightningModule, epoch: int, optimizer: Optimizer) -> None:
        if epoch != self.unfreeze_at_epoch:
            return
        norms = self._frozen_norms(pl_module)
        parameters = dict(pl_module.named_parameters())
        for name in self.names:
            parameters[name].requires_grad = True
        for norm in norms:
            norm.track_running_stats = True
        present = {id(p) for group in optimizer.param_groups for p in group["params"]}
        missing = [parameters[name] for name in self.names if id(parameters[name]) not in present]
        if missing:
            optimizer.add_param_group({"params": missing, "lr": optimizer.param_groups[0]["lr"], "name": "unfrozen"})

    def _frozen_norms(self, pl_module: pl.LightningModule) -> list[nn.Module]:
        """Batch-norm layers with weights, all of them among the frozen parameters."""
        names = set(self.names)
        frozen = {id(p) for name, p in pl_module.named_parameters() if name in names}
        return [m for m in pl_module.modules() if isinstance(m, _BatchNorm)
                and any(True for _ in m.parameters()) and all(id(p) in frozen for p in m.parameters())]
