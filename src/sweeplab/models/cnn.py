"""A CNN backbone: conv blocks (conv, batch norm, ReLU, max-pool, dropout) to a flat feature vector."""

from __future__ import annotations

from torch import nn


class CNN(nn.Module):
    def __init__(self, in_channels: int, channels: list[int], batch_norm: bool = True,
                 dropout: float = 0.0, pooled_size: int = 3):
        super().__init__()
        if not channels:
            raise ValueError("model.backbone.channels must name at least one block, e.g. [32, 64]")
        layers: list[nn.Module] = []
        previous = in_channels
        for width in channels:
            layers += [nn.Conv2d(previous, width, 3, padding=1, bias=not batch_norm)]
            layers += [nn.BatchNorm2d(width)] if batch_norm else []
            layers += [nn.ReLU(inplace=True), nn.MaxPool2d(2, ceil_mode=True), nn.Dropout2d(dropout)]
            previous = width
        layers += [nn.AdaptiveAvgPool2d(pooled_size), nn.Flatten()]
        self.layers = nn.Sequential(*layers)
        self.out_features = previous * pooled_size * pooled_size

    def forward(self, x):
        return self.layers(x)
