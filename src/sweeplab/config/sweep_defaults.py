"""Merge conf/sweep_defaults.yaml under a sweep file: every `sweep:` key and the sampler and pruner get a default."""

from __future__ import annotations

import re

from omegaconf import DictConfig, OmegaConf


def with_sweep_defaults(node: DictConfig, base: DictConfig) -> DictConfig:
    """The sweep file's node with `base.sweep` (conf/sweep_defaults.yaml) under its own keys, and
    `override /GROUP: OPTION` added to its defaults list for each group of `base.groups` it does not choose.
    A file that builds on another sweep file (`- digits_cnn` in its defaults list) gets them from that file:
    merged again here they would undo what that file sets."""
    entries = list(node.get("defaults") or [])
    if any(_builds_on_a_sweep(entry) for entry in entries):
        return node
    merged = OmegaConf.merge({"sweep": base.sweep}, node)
    chosen = {_group(entry) for entry in entries}
    for group, option in base.groups.items():
        if group not in chosen:
            entries.append({f"override /{group}": option})
    if entries:
        merged.defaults = entries
    return merged


def _builds_on_a_sweep(entry) -> bool:
    """`- digits_cnn` or `- /sweep/digits_cnn`: another file of the sweep group, not `_self_` or a group choice."""
    if not isinstance(entry, str) or entry == "_self_":
        return False
    return "/" not in entry or entry.startswith("/sweep/")


def _group(entry) -> str | None:
    """The group a defaults-list entry chooses: `override /sampler: tpe` -> sampler; `_self_` -> None."""
    if not isinstance(entry, DictConfig):
        return None
    (key,) = entry.keys()
    return re.sub(r"^(override\s+|optional\s+)*/?", "", str(key)).split("@")[0] or None
