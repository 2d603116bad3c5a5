"""A VGG-style backbone: blocks of 3x3 convolutions with ReLU, each block closed by 2x2 max-pooling (VGG16's recipe)."""

from __future__ import annotations

import torch
from torch import nn

from sweeplab.models.weights import load_file_strictly


class VGG(nn.Module):
    """`blocks` lists each block's convolution widths: VGG16 is [[64, 64], [128, 128], [256, 256, 256],
    [512, 512, 512], [512, 512, 512]] with pooled_size 7. Named as torchvision's VGG (features, avgpool)."""

    def __init__(self, in_channels: int, blocks: list[list[int]], batch_norm: bool = False, pooled_size: int = 1,
                 weights_path: str | None = None):
        super().__init__()
        if not blocks or not all(blocks):
            raise ValueError(f"model.backbone.blocks={blocks}: give each block's widths, e.g. [[32, 32], [64, 64]]")
        layers: list[nn.Module] = []
        previous = in_channels
        for block in blocks:
            for width in block:
                layers += [nn.Conv2d(previous, width, 3, padding=1)]
                layers += [nn.BatchNorm2d(width)] if batch_norm else []
                layers += [nn.ReLU(inplace=True)]
                previous = width
            # ceil_mode: small images (8x8 digits) keep at least one pixel however many blocks there are.
            layers += [nn.MaxPool2d(2, ceil_mode=True)]
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(pooled_size)
        self.out_features = previous * pooled_size * pooled_size
        if weights_path:
            load_file_strictly(self, weights_path, "model.backbone.weights_path")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.avgpool(self.features(x)), 1)
