"""The `finetune` config node (conf/finetune/), read and checked before anything is built from it."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import OmegaConf

from sweeplab.errors import ConfigError


@dataclass(frozen=True)
class Finetune:
    init_from: str | None = None
    init_head: bool = True
    init_digest: str | None = None
    freeze: tuple[str, ...] = ()
    unfreeze_at_epoch: int | None = None
    backbone_lr_scale: float | None = None


def read(cfg) -> Finetune:
    """The run's finetune settings; all defaults when the config has no `finetune` node (a run recorded
    before it existed, reproduced)."""
    node = cfg.get("finetune")
    if node is None:
        return Finetune()
    raw = OmegaConf.to_container(node, resolve=True)
    freeze = raw.get("freeze") or []
    freeze = [freeze] if isinstance(freeze, str) else freeze
    if not isinstance(freeze, list) or not all(isinstance(p, str) and p for p in freeze):
        raise ConfigError(f"finetune.freeze={freeze}: must be a list of parameter-name patterns, e.g. [backbone.*]")
    settings = Finetune(
        # A run id of digits only reads as a number from the command line.
        init_from=None if raw.get("init_from") in (None, "") else str(raw["init_from"]),
        init_head=raw.get("init_head", True),
        init_digest=raw.get("init_digest"),
        freeze=tuple(freeze),
        unfreeze_at_epoch=raw.get("unfreeze_at_epoch"),
        backbone_lr_scale=raw.get("backbone_lr_scale"),
    )
    _check(settings)
    epochs = OmegaConf.select(cfg, "trainer.max_epochs")
    if settings.unfreeze_at_epoch is not None and isinstance(epochs, int) and 0 < epochs <= settings.unfreeze_at_epoch:
        raise ConfigError(f"finetune.unfreeze_at_epoch={settings.unfreeze_at_epoch}: training ends after "
                          f"trainer.max_epochs={epochs} epochs (0 to {epochs - 1}), so nothing would be unfrozen; "
                          f"give an epoch below {epochs}, or null to keep finetune.freeze for good")
    return settings


def _check(s: Finetune) -> None:
    if not isinstance(s.init_head, bool):
        raise ConfigError(f"finetune.init_head={s.init_head}: must be true or false")
    if s.unfreeze_at_epoch is not None:
        if isinstance(s.unfreeze_at_epoch, bool) or not isinstance(s.unfreeze_at_epoch, int) or s.unfreeze_at_epoch < 1:
            raise ConfigError(f"finetune.unfreeze_at_epoch={s.unfreeze_at_epoch}: must be an epoch number >= 1, "
                              "or null (never)")
        if not s.freeze:
            raise ConfigError(f"finetune.unfreeze_at_epoch={s.unfreeze_at_epoch}: nothing is frozen; "
                              "set finetune.freeze too, e.g. finetune.freeze=[backbone.*]")
    scale = s.backbone_lr_scale
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0):
        raise ConfigError(f"finetune.backbone_lr_scale={scale}: must be a number > 0, or null (one learning rate)")
