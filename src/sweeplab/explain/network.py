"""The network an explanation attributes: a module's `net` (extras.HasNet) or the module itself, one tensor in."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.model_helpers import is_overridden
from torch import nn

from sweeplab import extras
from sweeplab.explain.protocols import NotExplainable


def network_of(module: nn.Module) -> nn.Module:
    """What gets explained is what gets exported as the model (tracking/model_export.py)."""
    if isinstance(module, extras.HasNet) and isinstance(module.net, nn.Module):
        return module.net
    if isinstance(module, pl.LightningModule) and not is_overridden("forward", module):
        raise NotExplainable(f"{type(module).__qualname__} defines no forward() to explain; explanations need a "
                             "forward that takes one tensor of inputs (or a `net` attribute that does)")
    return module


def outputs_of(net: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The network's outputs on the examples; one clear line when its forward does not take one tensor."""
    try:
        with torch.no_grad():
            outputs = net(inputs)
    except (TypeError, ValueError, RuntimeError, IndexError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise NotExplainable(f"{type(net).__qualname__}.forward does not take one tensor of inputs of shape "
                             f"{tuple(inputs.shape)} ({first}); explanations need forward(x) -> tensor") from None
    if not isinstance(outputs, torch.Tensor) or outputs.ndim not in (1, 2) or len(outputs) != len(inputs):
        got = tuple(outputs.shape) if isinstance(outputs, torch.Tensor) else type(outputs).__name__
        raise NotExplainable(f"{type(net).__qualname__}.forward returns {got} for {len(inputs)} inputs; "
                             "explanations need one row of outputs (logits or values) per input")
    return outputs
