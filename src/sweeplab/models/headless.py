"""Any importable network as a backbone, its own head (torchvision vgg16's `classifier`) replaced by nn.Identity."""

from __future__ import annotations

import torch
from torch import nn

from sweeplab.models.weights import load_file_strictly


class Headless(nn.Module):
    """`network` is built by its own `_target_` (a factory or class); `head_attribute` names its head, a
    dotted path for a nested one (`heads.head`). Weights from `weights_path` are the whole network's (its
    head included, as a downloaded file holds them), loaded before the head is dropped; nothing is downloaded."""

    def __init__(self, network: nn.Module, head_attribute: str, out_features: int | None = None,
                 weights_path: str | None = None):
        super().__init__()
        if not isinstance(network, nn.Module):
            raise ValueError(f"model.backbone.network built a {type(network).__name__}, not a torch nn.Module")
        if weights_path:
            load_file_strictly(network, weights_path, "model.backbone.weights_path")
        try:
            head = network.get_submodule(head_attribute)   # a dotted path for a nested head (heads.head)
        except AttributeError:
            children = ", ".join(n for n, _ in network.named_children())
            raise ValueError(f"model.backbone.head_attribute={head_attribute}: {type(network).__name__} has no such "
                             f"module; its children are {children}") from None
        features = out_features or _in_features(head)
        if not features:
            raise ValueError(f"model.backbone.out_features=null: {head_attribute} has no Linear layer to read the "
                             "feature count from; set model.backbone.out_features")
        parent, _, name = head_attribute.rpartition(".")
        setattr(network.get_submodule(parent), name, nn.Identity())   # get_submodule("") is the network
        self.network = network
        self.out_features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.network(x), 1)


def _in_features(head: nn.Module) -> int | None:
    """The features the head took in: those of its first Linear layer."""
    return next((m.in_features for m in head.modules() if isinstance(m, nn.Linear)), None)
