"""Draw a feature model's explanations: mean |attribution| per input column (tabular data, flat inputs)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from sweeplab.explain.attribute import NAMES
from sweeplab.explain.tables import Table

TOP = 30   # columns drawn: those with the largest mean |attribution| by the first method


def features_figure(table: Table, title: str) -> Figure:
    """A horizontal bar chart per method of the top columns, largest at the top."""
    methods = list(table.values)
    first = table.values[methods[0]]
    order = np.argsort(-first, kind="stable")[:TOP][::-1]
    figure = Figure(figsize=(4 * len(methods) + 1, 0.25 * len(order) + 1.6), layout="constrained")
    panels = figure.subplots(1, len(methods), squeeze=False, sharey=True)[0]
    for axes, method in zip(panels, methods):
        axes.barh([table.features[i] for i in order], table.values[method][order])
        axes.set_title(NAMES[method], fontsize=10)
        axes.set_xlabel("mean |attribution|")
        axes.grid(axis="x", alpha=0.3)
    figure.suptitle(f"{title}\nthe {len(order)} of {len(first)} input columns with the largest mean |attribution| "
                    f"by {NAMES[methods[0]]}", fontsize=11)
    return figure
