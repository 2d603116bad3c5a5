"""Which of the optimizer and scheduler config groups a model takes: those its `_target_` names as parameters.

A LightningModule that names neither builds its own in configure_optimizers. Imports no torch (the
model's own module is imported to read its signature): `--print-config` and the sweep driver use it.
"""

from __future__ import annotations

import inspect

# Config groups handed to the model's `_target_` as keyword arguments, when it names them as parameters.
OPTIMIZER_GROUPS = ("optimizer", "scheduler")


def optimizer_groups(model_cfg) -> tuple[str, ...]:
    """Which of the `optimizer` and `scheduler` groups the model's `_target_` takes: those it names as
    parameters (a `**kwargs` does not count: the groups' partials would reach code not expecting them).
    () when the target cannot be imported; building the model then says why."""
    return tuple(name for name in OPTIMIZER_GROUPS if name in (_parameters(model_cfg) or ()))


def unused_optimizer_groups(model_cfg) -> tuple[str, ...]:
    """The optimizer and scheduler groups the model's `_target_` does not take (its own
    configure_optimizers decides); () when the target cannot be imported (building the model says why)."""
    parameters = _parameters(model_cfg)
    return () if parameters is None else tuple(name for name in OPTIMIZER_GROUPS if name not in parameters)


def describe_optimizer_groups(model_cfg) -> str:
    """One line for `--print-config`: which of the optimizer and scheduler groups apply to this model."""
    target = model_cfg.get("_target_")
    parameters = _parameters(model_cfg)
    if parameters is None:
        return f"optimizer, scheduler: cannot tell whether they apply: {target} cannot be imported"
    used = [name for name in OPTIMIZER_GROUPS if name in parameters]
    unused = [name for name in OPTIMIZER_GROUPS if name not in parameters]
    parts = []
    if used:
        parts.append(f"{' and '.join(used)} appl{'ies' if len(used) == 1 else 'y'} (parameters of {target})")
    if unused:
        parts.append(f"{' and '.join(unused)} do{'es' if len(unused) == 1 else ''} not apply: {target} has no "
                     f"{' or '.join(unused)} parameter (its own configure_optimizers decides)")
    return "; ".join(parts)


def _parameters(model_cfg) -> set[str] | None:
    from hydra.utils import get_object

    try:
        return set(inspect.signature(get_object(str(model_cfg["_target_"]))).parameters)
    except Exception:   # the user's code fails to import: instantiate reports it, with its cause
        return None
