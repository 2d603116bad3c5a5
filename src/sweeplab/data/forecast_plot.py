"""Draw a forecast of a test period against the measured series and the seasonal-naive reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def forecast_figure(dates: pd.DatetimeIndex, actual: np.ndarray, times: np.ndarray,
                    forecast: np.ndarray, naive: np.ndarray, units: str = "ppm") -> Figure:
    """`times`, `forecast` and `naive` are N x horizon: row i forecasts times[i] (lead 1 ... horizon).

    Plots the measured series over the forecast period, the lead-1 and the longest-lead forecasts,
    and the seasonal-naive one; the title gives the RMSE over every lead of every row.
    """
    truth = actual[times]
    rmse = float(np.sqrt(np.mean((forecast - truth) ** 2)))
    naive_rmse = float(np.sqrt(np.mean((naive - truth) ** 2)))
    period = np.arange(times.min(), times.max() + 1)
    # A bare Figure, not pyplot: no global figure state, nothing to close, safe off the main thread.
    figure = Figure(figsize=(11, 4.5), layout="constrained")
    axes = figure.subplots()
    axes.plot(dates[period], actual[period], color="black", linewidth=1.2, label="measured")
    axes.plot(dates[times[:, 0]], forecast[:, 0], linewidth=1, label="model, 1 step ahead")
    if times.shape[1] > 1:
        axes.plot(dates[times[:, -1]], forecast[:, -1], linewidth=1,
                  label=f"model, {times.shape[1]} steps ahead")
    axes.plot(dates[times[:, 0]], naive[:, 0], linewidth=1, linestyle="--", color="grey",
              label="seasonal naive (a year before)")
    axes.set_ylabel(units)
    axes.set_title(f"Test-period forecast: RMSE {rmse:.3f} {units} (seasonal naive {naive_rmse:.3f} {units}), "
                   f"all {times.shape[1]} leads")
    axes.legend(loc="upper left")
    axes.grid(alpha=0.3)
    return figure
