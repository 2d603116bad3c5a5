"""Draw an image model's explanations: each example, then each method's attribution heat map over it."""

from __future__ import annotations

import numpy as np
import torch
from captum.attr import visualization
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure

from sweeplab.explain.attribute import NAMES, Attributions
from sweeplab.explain.labels import Label

# Signed methods show evidence for (green) and against (red) the target; Saliency is |gradient|.
SIGNS = {"integrated_gradients": "all", "saliency": "absolute_value", "gradient_shap": "all", "lime": "all",
         "kernel_shap": "all"}
# Captum's colours, see-through where the attribution is near 0, so that the image shows under the heat map.
COLOURS = {"all": LinearSegmentedColormap.from_list("against_for", [(0.85, 0, 0, 1), (1, 1, 1, 0), (0, 0.5, 0, 1)]),
           "absolute_value": LinearSegmentedColormap.from_list("size", [(1, 0.5, 0, 0), (1, 0.5, 0, 1)])}


def image_figure(attributions: Attributions, labels: list[Label], title: str) -> Figure:
    """A column per example (titled true / predicted), a row per method: its heat map blended over the image."""
    images = attributions.examples.inputs
    methods = list(attributions.maps)
    # A bare Figure, not pyplot: no global figure state, nothing to close, safe off the main thread.
    figure = Figure(figsize=(1.5 * len(images) + 1.2, 1.55 * (len(methods) + 1) + 0.8), layout="constrained")
    panels = figure.subplots(len(methods) + 1, len(images), squeeze=False)
    for column, (image, label) in enumerate(zip(images, labels)):
        shown = _displayable(image)
        top = panels[0, column]
        top.imshow(shown[..., 0] if shown.shape[-1] == 1 else shown, cmap="gray")
        top.set_xticks([])
        top.set_yticks([])
        top.set_title(f"true {label.true}\npred {label.predicted}", fontsize=9,
                      color="black" if label.right in (True, None) else "red")
        for row, method in enumerate(methods, 1):
            _heat_map(attributions.maps[method][column].permute(1, 2, 0).numpy(), shown, method, figure,
                      panels[row, column])
    panels[0, 0].set_ylabel("input", fontsize=10)
    for row, method in enumerate(methods, 1):
        panels[row, 0].set_ylabel(NAMES[method].replace(" ", "\n"), fontsize=10)
    figure.suptitle(f"{title}\ngreen: for it, red: against it; Saliency (orange): |gradient|", fontsize=11)
    return figure


def _heat_map(attribution: np.ndarray, shown: np.ndarray, method: str, figure: Figure, axes) -> None:
    """The method's heat map blended over the image; the bare image when the attribution is 0 everywhere
    (Captum cannot scale that, e.g. Lime's Lasso on a model whose output barely moves)."""
    if not np.any(attribution):
        axes.imshow(shown[..., 0] if shown.shape[-1] == 1 else shown, cmap="gray", alpha=0.35)
        axes.set_xticks([])
        axes.set_yticks([])
        axes.set_title("0 everywhere", fontsize=8)
        return
    visualization.visualize_image_attr(attribution, shown, method="blended_heat_map", sign=SIGNS[method],
                                       cmap=COLOURS[SIGNS[method]], alpha_overlay=0.85, plt_fig_axis=(figure, axes),
                                       use_pyplot=False)


def _displayable(image: torch.Tensor) -> np.ndarray:
    """C x H x W model input (normalised, any range) as H x W x C in [0, 1], each image stretched to its own range."""
    array = image.permute(1, 2, 0).double().numpy()
    low, high = array.min(), array.max()
    return (array - low) / (high - low) if high > low else np.zeros_like(array)
