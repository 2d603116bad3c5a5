"""Time-series helpers: chronological split points, gap filling that never looks ahead, forecast windows."""

from __future__ import annotations

import numpy as np
import pandas as pd


def split_ends(length: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    """(end of training, end of validation) as indices: train, then validation, then test, in time order."""
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError("data.val_fraction and data.test_fraction must be in (0, 1) and sum to less than 1")
    test_start = length - int(round(length * test_fraction))
    return test_start - int(round(length * val_fraction)), test_start


def fill_gaps(values: np.ndarray, ends: list[int]) -> list[np.ndarray]:
    """For each end in `ends`, values[:end] with its gaps (NaN) filled by linear interpolation
    from values[:end] only: the training period is filled from training values alone, validation
    from training and validation values, so no later value decides an earlier one.

    A gap at the very end of a period (nothing after it to interpolate towards) keeps the last
    value seen; one at the very start takes the first.
    """
    filled = []
    for end in ends:
        part = pd.Series(values[:end], dtype="float64")
        if part.isna().all():
            raise ValueError(f"the first {end} values of the series are all missing")
        filled.append(part.interpolate(method="linear", limit_direction="both").to_numpy())
    return filled


def windows(series: np.ndarray, start: int, end: int, window: int, horizon: int,
            observed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every (inputs, targets) pair whose `horizon` targets lie in series[start:end].

    Inputs are the `window` values just before the first target: they may reach back before
    `start` (the past is known) but never reach a target or anything after it. `series` is
    gap-filled; given `observed` (the same values before filling, NaN in the gaps), a gap still
    open when a window's inputs end takes the last observed value instead of its interpolation,
    which leaned on values after the window: a forecaster cannot interpolate towards the future.
    Returns inputs N x window and targets N x horizon; row i forecasts from time start' + i, where
    start' = max(start, window).
    """
    first = max(start, window)
    count = end - horizon - first + 1
    if count < 1:
        raise ValueError(f"data.window={window}, data.horizon={horizon}: the period [{start}, {end}) "
                         f"of the series leaves no window; use a shorter window or horizon")
    times = np.arange(first, first + count)
    past = times[:, None] + np.arange(-window, 0)
    inputs = series[past]
    if observed is not None:
        held = pd.Series(observed, dtype="float64").ffill().bfill().to_numpy()
        inputs = np.where(_next_observed(observed)[past] >= times[:, None], held[past], inputs)
    targets = series[times[:, None] + np.arange(horizon)]
    return inputs, targets


def _next_observed(observed: np.ndarray) -> np.ndarray:
    """For each time, the first time at or after it with an observed (non-NaN) value; len(observed) if none."""
    marks = np.where(np.isnan(observed), len(observed), np.arange(len(observed)))
    return np.minimum.accumulate(marks[::-1])[::-1]


def target_times(start: int, end: int, window: int, horizon: int) -> np.ndarray:
    """The time index of every target of `windows(...)`, N x horizon, in the same order."""
    first = max(start, window)
    return np.arange(first, end - horizon + 1)[:, None] + np.arange(horizon)
