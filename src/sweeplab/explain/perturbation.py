"""Lime and KernelShap: model-agnostic attributions fitted to the network's outputs on perturbed inputs.

A feature (a superpixel, a step, a column, a word) is either kept or set to its baseline; Captum fits a
linear model of the output on which features were kept, and its weight for a feature is the attribution.
"""

from __future__ import annotations

import math

import torch
from captum.attr import KernelShap, Lime

from sweeplab.explain import tokens
from sweeplab.explain.kinds import Kind

# Perturbed inputs per example and method. Enough for KernelShap's regression on a few dozen features
# (MNIST's 49 superpixels, 26 CO2 weeks, a text's words) to settle; few enough that the tests' explains
# (a few examples, tiny models) stay at about a second per method on one CPU core.
SAMPLES = 200
BATCH = 100      # perturbed inputs per forward pass: a bounded memory for large images
PATCHES = 7      # superpixels along an image's longer side: 28 x 28 -> 4 x 4 pixels each (49), 8 x 8 -> 2 x 2 (16)
ALGORITHMS = {"lime": Lime, "kernel_shap": KernelShap}


def patch_side(height: int, width: int) -> int:
    """The side in pixels of the square superpixels of an image: about PATCHES of them along its longer side."""
    return math.ceil(max(height, width) / PATCHES)


def dense_mask(kind: Kind, shape: torch.Size) -> torch.Tensor:
    """1 x `shape` feature ids for one example: a superpixel, a step or a column (with all its channels)."""
    if kind is Kind.IMAGES:
        channels, height, width = shape
        side = patch_side(height, width)
        rows, columns = torch.arange(height) // side, torch.arange(width) // side
        grid = rows[:, None] * math.ceil(width / side) + columns[None, :]
        return grid.expand(channels, height, width).unsqueeze(0).contiguous()
    if kind is Kind.STEPS:
        steps, channels = shape
        return torch.arange(steps)[:, None].expand(steps, channels).unsqueeze(0).contiguous()
    if kind is Kind.FEATURES:
        return torch.arange(shape[0]).unsqueeze(0)
    raise ValueError(f"dense_mask: {kind} inputs have no dense feature mask")


def dense(method: str, net: torch.nn.Module, x: torch.Tensor, kind: Kind, baseline: torch.Tensor,
          target) -> torch.Tensor:
    """The method's attributions in the inputs' shape: a feature's weight spread evenly over its elements,
    so that they sum to it (summing channels, as the tables do, then gives a step's or column's weight)."""
    mask = dense_mask(kind, x.shape[1:])
    sizes = torch.bincount(mask.flatten())[mask]   # each element's feature's number of elements
    weights = [feature_weights(method, net, x[i:i + 1], baseline, mask, one_target(target, i))
               for i in range(len(x))]
    return torch.cat(weights) / sizes


def words(method: str, on_embeddings: tokens.OnEmbeddings, ids: torch.Tensor, vectors: torch.Tensor,
          pad_vectors: torch.Tensor, pad: int, target) -> torch.Tensor:
    """N x T: each word's weight (0 at padding). Only a text's words are features: its padding keeps its
    own embedding in every perturbed input, so it is neither a feature nor changed by one."""
    maps = torch.zeros(ids.shape)
    for i, row in enumerate(ids):
        positions = (row != pad).nonzero().flatten()
        if not len(positions):   # an empty text: no word to attribute
            continue
        kept = vectors[i:i + 1, positions]
        mask = torch.arange(len(positions))[None, :, None].expand_as(kept).contiguous()
        weights = feature_weights(method, tokens.OnWords(on_embeddings, vectors[i:i + 1], positions), kept,
                                  pad_vectors[i:i + 1, positions], mask, one_target(target, i), (ids[i:i + 1],))
        # Captum repeats a word's weight on each embedding dimension: one of them is the word's.
        maps[i, positions] = weights[0, :, 0]
    return maps


def feature_weights(method: str, forward, x: torch.Tensor, baseline: torch.Tensor, mask: torch.Tensor,
                    target, args: tuple = ()) -> torch.Tensor:
    """Captum's weight of each feature of one example (1 x ...), repeated on every element of the feature."""
    if int(mask.max()) == 0:
        # KernelShap's sampler needs two features; one feature's Shapley value (and an unregularised
        # linear fit's weight) is the whole change of the output.
        change = _output(forward, x, target, args) - _output(forward, baseline, target, args)
        return torch.full(x.shape, float(change))
    # One example at a time: Captum fits a model per example anyway, and warns when given a batch.
    return ALGORITHMS[method](forward).attribute(x, baselines=baseline, target=target, feature_mask=mask,
                                                 additional_forward_args=args or None, n_samples=SAMPLES,
                                                 perturbations_per_eval=BATCH)


def one_target(target, index: int):
    """Example `index`'s target: its own class of a per-example tensor, else the shared output (or None)."""
    return target[index:index + 1] if isinstance(target, torch.Tensor) else target


def _output(forward, x: torch.Tensor, target, args: tuple) -> float:
    """The attributed output of the network on one input."""
    with torch.no_grad():
        out = forward(x, *args)
    if target is None:
        return float(out.reshape(-1)[0])
    return float(out[0, int(target[0]) if isinstance(target, torch.Tensor) else target])
