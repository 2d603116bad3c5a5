"""A small stand-in for an importable network factory such as torchvision.models.vgg16: features, then a head."""

from __future__ import annotations

from torch import nn


class TinyVGG(nn.Module):
    """Named like torchvision's VGG: `features`, `avgpool`, and the head `classifier`."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.avgpool = nn.AdaptiveAvgPool2d(2)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(8 * 2 * 2, 16), nn.ReLU(), nn.Linear(16, num_classes))

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)))


def tiny_vgg(num_classes: int = 1000) -> nn.Module:
    """A factory, as torchvision.models.vgg16(weights=None) is one."""
    return TinyVGG(num_classes)
