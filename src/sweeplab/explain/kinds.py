"""What kind of input a model takes, read from its examples' shape and dtype: images, token ids, steps or features."""

from __future__ import annotations

import enum

import torch

from sweeplab.explain.protocols import NotExplainable


class Kind(enum.Enum):
    IMAGES = "images"       # N x C x H x W floats: a feature per pixel (channels summed)
    TOKENS = "tokens"       # N x T integer token ids, right-padded: a feature per word
    STEPS = "steps"         # N x T x C floats (sweeplab's sequences: CO2 windows, MNIST-1D): a feature per step
    FEATURES = "features"   # N x F floats (tabular data, flattened images): a feature per column


def kind_of(inputs: torch.Tensor) -> Kind:
    floating = inputs.dtype.is_floating_point
    if not floating and inputs.ndim == 2:
        return Kind.TOKENS
    if floating and inputs.ndim in (2, 3, 4):
        return {2: Kind.FEATURES, 3: Kind.STEPS, 4: Kind.IMAGES}[inputs.ndim]
    raise NotExplainable(f"inputs of shape {tuple(inputs.shape)} ({inputs.dtype}) cannot be explained; explanations "
                         "know N x F features, N x T x C sequences, N x C x H x W images and N x T token ids")
