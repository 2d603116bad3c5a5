"""A 1-D CNN backbone for sequences (B x T x C): conv blocks over time to a flat feature vector."""

from __future__ import annotations

import torch
from torch import nn


class CNN1d(nn.Module):
    """Blocks of conv (kernel_size, same padding), batch norm, ReLU, max-pool by 2 and dropout,
    then average-pooled to `pooled_size` steps and flattened, so some order in time survives."""

    def __init__(self, in_channels: int = 1, channels: list[int] = (32, 64), kernel_size: int = 5,
                 batch_norm: bool = True, dropout: float = 0.0, pooled_size: int = 4):
        super().__init__()
        if not channels:
            raise ValueError("model.backbone.channels must name at least one block, e.g. [32, 64]")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"model.backbone.kernel_size={kernel_size}: must be odd (same padding)")
        layers: list[nn.Module] = []
        previous = in_channels
        for width in channels:
            layers += [nn.Conv1d(previous, width, kernel_size, padding=kernel_size // 2, bias=not batch_norm)]
            layers += [nn.BatchNorm1d(width)] if batch_norm else []
            layers += [nn.ReLU(inplace=True), nn.MaxPool1d(2, ceil_mode=True), nn.Dropout(dropout)]
            previous = width
        layers += [nn.AdaptiveAvgPool1d(pooled_size), nn.Flatten()]
        self.layers = nn.Sequential(*layers)
        self.out_features = previous * pooled_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.transpose(1, 2))   # time-major sequences to channels-first
