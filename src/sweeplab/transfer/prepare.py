"""The one call run_experiment makes: apply the `finetune` settings to the freshly built module."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import pytorch_lightning as pl
from omegaconf import DictConfig
from torch import nn

from sweeplab import extras
from sweeplab.errors import ConfigError
from sweeplab.models.supervised import SupervisedModule
from sweeplab.models.weights import describe, digest, load_into, mismatches
from sweeplab.transfer import settings as finetune_settings
from sweeplab.transfer.freezing import FreezeParameters, matching_parameters
from sweeplab.transfer.pinning import init_tags
from sweeplab.transfer.sources import Source, fetch


@runtime_checkable
class HasHead(Protocol):
    """A module whose last layer `head` is task-specific (sweeplab's models: the linear layer after dropout)."""

    head: nn.Module


@dataclass
class Transfer:
    callbacks: list[pl.Callback] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)


def prepare_module(cfg: DictConfig, module: pl.LightningModule, tracking_uri: str, *,
                   quiet: bool = False) -> Transfer:
    """Load finetune.init_from's weights into `module`, check the freeze patterns and the backbone's
    learning-rate split; return the callbacks and tags the run needs. Bad input raises ConfigError, before
    any run exists. `quiet`: say nothing of what was loaded (run_experiment's ranks > 0)."""
    settings = finetune_settings.read(cfg)
    transfer = Transfer()
    if settings.init_from:
        transfer.tags = _initialise(module, settings, tracking_uri, quiet)
    if settings.freeze:
        names = matching_parameters(module, settings.freeze)
        transfer.callbacks.append(FreezeParameters(names, settings.unfreeze_at_epoch))
        if not quiet:
            until = "for the whole run" if settings.unfreeze_at_epoch is None else \
                f"until epoch {settings.unfreeze_at_epoch}"
            print(f"froze {len(names)} tensors ({', '.join(settings.freeze)}) {until}", flush=True)
    if settings.backbone_lr_scale is not None:
        if not isinstance(module, SupervisedModule):
            raise ConfigError(f"finetune.backbone_lr_scale={settings.backbone_lr_scale}: {type(module).__name__} "
                              "makes its own optimizer (configure_optimizers); only sweeplab's models "
                              "(SupervisedModule) give the backbone its own learning rate")
        module.backbone_lr_scale = float(settings.backbone_lr_scale)
    return transfer


def _initialise(module: pl.LightningModule, settings: finetune_settings.Finetune, tracking_uri: str,
                quiet: bool) -> dict[str, str]:
    key = f"finetune.init_from={settings.init_from}"
    source = fetch(settings.init_from, tracking_uri)
    # A logged model is the module's exported network `net` (tracking/model_export.py): it loads into `net`.
    has_net = isinstance(module, extras.HasNet) and isinstance(module.net, nn.Module)
    target = module.net if source.of_net and has_net else module
    head = _head_keys(module, target, source)
    left_out = frozenset() if settings.init_head else head
    if not settings.init_head and not head:
        raise ConfigError(f"finetune.init_head=false: {type(module).__name__} has no `head` module to leave out; "
                          "give it a `head` attribute (its last layer) or keep finetune.init_head=true")
    problems = mismatches(source.weights, target.state_dict(), left_out)
    if problems:
        hint = ""
        if settings.init_head and head and problems.keys() <= head:
            hint = " (only the head differs: set finetune.init_head=false to start it afresh for the new task)"
        raise ConfigError(f"{key}: the weights do not fit {type(module).__name__}: {describe(problems)}{hint}")
    # Named as in the module, so that every form naming the same weights gives the same digest.
    prefix = "net." if target is not module else ""
    found = digest({prefix + k: v for k, v in source.weights.items()})
    if settings.init_digest and found != settings.init_digest:
        raise ConfigError(f"{key}: these weights (digest {found}) are not those the run started from "
                          f"(digest {settings.init_digest}); the source has changed since")
    load_into(target, source.weights, left_out)
    if not quiet:
        loaded = len(source.weights.keys() - left_out)
        print(f"init_from: {loaded} tensors from {source.resolved}{', head afresh' if left_out else ''}", flush=True)
    return init_tags(settings.init_from, source.resolved, found, source.run_id, source.model_version)


def _head_keys(module: nn.Module, target: nn.Module, source: Source) -> frozenset[str]:
    """The state-dict keys (of target and source) under the module's `head`; empty when it has none."""
    if not (isinstance(module, HasHead) and isinstance(module.head, nn.Module)):
        return frozenset()
    prefix = next((f"{name}." for name, m in target.named_modules() if m is module.head), None)
    if prefix is None:
        return frozenset()
    return frozenset(k for k in [*target.state_dict(), *source.weights] if k.startswith(prefix))
