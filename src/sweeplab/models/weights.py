"""Load a state dict into a module strictly (same names, same shapes), naming the first mismatches in one line."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

SHOWN = 4   # mismatches named in the error; the rest are counted


def mismatches(source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor],
               left_out: frozenset[str] = frozenset()) -> dict[str, str]:
    """What keeps `source` from loading into `target` as is (key -> what is wrong): keys only one side
    has, shapes that differ. Keys in `left_out` are ignored on both sides (a head that starts afresh)."""
    problems = {}
    for key, tensor in source.items():
        if key in left_out:
            continue
        if key not in target:
            problems[key] = f"{key} {_shape(tensor)}: not in the model"
        elif tensor.shape != target[key].shape:
            problems[key] = f"{key}: {_shape(tensor)} in the source, {_shape(target[key])} in the model"
    problems.update({key: f"{key} {_shape(target[key])}: not in the source" for key in target
                     if key not in source and key not in left_out})
    return problems


def describe(problems: dict[str, str]) -> str:
    """The first few mismatches in one line, and how many more there are."""
    shown = list(problems.values())
    more = f"; and {len(shown) - SHOWN} more" if len(shown) > SHOWN else ""
    return "; ".join(shown[:SHOWN]) + more


def load_into(module: nn.Module, weights: Mapping[str, torch.Tensor], left_out: frozenset[str] = frozenset()) -> None:
    """Copy `weights` into `module`; the caller has checked them with `mismatches`."""
    kept = {key: value for key, value in weights.items() if key not in left_out}
    module.load_state_dict(kept, strict=not left_out)


def digest(weights: Mapping[str, torch.Tensor]) -> str:
    """A short hash of names, dtypes, shapes and values: the same digest means the same weights."""
    hashed = hashlib.sha256()
    for key in sorted(weights):
        tensor = weights[key].detach().cpu().contiguous()
        hashed.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        hashed.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return hashed.hexdigest()[:16]


def read_state_dict(path: Path, what: str) -> dict[str, torch.Tensor]:
    """A state dict saved with torch.save (a mapping of names to tensors); `what` names the setting for errors."""
    if not path.is_file():
        raise ValueError(f"{what}={path}: no such file")
    try:
        # weights_only: a state dict holds tensors; unpickling anything else could run code.
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"{what}={path}: not a state dict torch.load can read ({str(e).splitlines()[0]})") from None
    if not (isinstance(loaded, Mapping) and loaded
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items())):
        raise ValueError(f"{what}={path}: not a state dict (a mapping of parameter names to tensors, as "
                         "torch.save(module.state_dict(), PATH) writes)")
    return dict(loaded)


def load_file_strictly(module: nn.Module, path: str | Path, what: str) -> None:
    """Load the state dict at `path` into `module`, every key and shape matching (a backbone's weights_path)."""
    path = Path(path).expanduser()
    weights = read_state_dict(path, what)
    problems = mismatches(weights, module.state_dict())
    if problems:
        raise ValueError(f"{what}={path}: the weights do not fit {type(module).__name__}: {describe(problems)}")
    load_into(module, weights)


def _shape(tensor: torch.Tensor) -> str:
    return str(list(tensor.shape))
