"""Draw a sequence model's explanations: attribution per input step (e.g. per week of a CO2 window)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from sweeplab.explain.attribute import NAMES, Attributions
from sweeplab.explain.tables import Table



def steps_figure(attributions: Attributions, table: Table, title: str) -> Figure:
    """A panel per method: each example's attribution per input step (channels summed) as a thin line,
    the mean |attribution| over the examples as a thick one; step t-k is the k-th from the window's end."""
    methods = list(attributions.maps)
    figure = Figure(figsize=(11, 2.6 * len(methods) + 0.6), layout="constrained")
    panels = figure.subplots(len(methods), 1, squeeze=False, sharex=True)[:, 0]
    for axes, method in zip(panels, methods):
        per_step = attributions.maps[method].sum(2).double().numpy()   # N x T
        steps = -np.arange(per_step.shape[1], 0, -1)
        for index, row in enumerate(per_step):
            axes.plot(steps, row, linewidth=0.7, alpha=0.45,
                      label=f"each of the {len(per_step)} examples" if index == 0 else None)
        axes.plot(steps, table.values[method], color="black", linewidth=2, label="mean |attribution|")
        axes.axhline(0, color="grey", linewidth=0.6)
        axes.set_ylabel(NAMES[method])
        axes.grid(alpha=0.3)
        axes.legend(loc="upper left", fontsize=8)
    panels[-1].set_xlabel("input step (-k: the k-th from the end; CO2: weeks before the forecast)")
    figure.suptitle(title, fontsize=11)
    return figure
