"""The Lightning callbacks a run's config asks for: the `callbacks` group, a dict of named `_target_`s."""

from __future__ import annotations

import pytorch_lightning as pl
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from sweeplab.errors import ConfigError, cause_line


def from_config(cfg: DictConfig) -> list[pl.Callback]:
    """One callback per entry of `callbacks` (conf/callbacks/: early_stopping, lr_monitor, swa,
    rich_progress_bar, or the user's own `_target_`); an entry set to null is left out.

    Every rank builds them from the same resolved config, so under DDP they run on every rank.
    """
    built = []
    for name, node in (cfg.get("callbacks") or {}).items():
        if node is None:
            continue
        try:
            callback = instantiate(node)
        except InstantiationException as e:
            raise ConfigError(f"callbacks.{name}: {cause_line(e)}") from None
        if not isinstance(callback, pl.Callback):
            raise ConfigError(f"callbacks.{name}: {node.get('_target_')} built a {type(callback).__name__}, "
                              "not a pytorch_lightning Callback")
        built.append(callback)
    return built
