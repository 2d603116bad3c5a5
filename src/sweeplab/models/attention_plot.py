"""Draw attention weights as heatmaps, one panel per example, its tokens (or steps) on both axes."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

MAX_TICKS = 48   # beyond this, tick labels overlap into a grey bar
COLUMNS = 2


def attention_figure(maps: list[np.ndarray], labels: list[list[str]]) -> Figure:
    """`maps[i]` is a square matrix: row = the attending step, column = the step attended to."""
    # A bare Figure, not pyplot: no global figure state, nothing to close, safe off the main thread.
    side = max(3.5, 0.2 * max(len(m) for m in maps) + 1.5)
    columns = min(COLUMNS, len(maps))
    rows = math.ceil(len(maps) / columns)
    figure = Figure(figsize=(side * columns, side * rows + 0.5), layout="constrained")
    panels = figure.subplots(rows, columns, squeeze=False).flatten()
    for axes in panels[len(maps):]:
        axes.set_axis_off()
    for axes, weights, names in zip(panels, maps, labels):
        image = axes.imshow(weights, cmap="viridis", vmin=0.0)
        if len(names) <= MAX_TICKS:
            axes.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
            axes.set_yticks(range(len(names)), names, fontsize=7)
        axes.set_xlabel("attended to")
        axes.set_ylabel("attending")
        figure.colorbar(image, ax=axes, shrink=0.6)
    figure.suptitle("Last-layer self-attention (mean over heads)")
    return figure
