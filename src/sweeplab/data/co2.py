"""Weekly Mauna Loa CO2 (statsmodels, 1958-2001) as forecasting windows, split in time order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch.utils.data import TensorDataset

from sweeplab.data.arrays import fingerprint
from sweeplab.data.forecast_plot import forecast_figure
from sweeplab.data.loaders import SplitDataModule
from sweeplab.data.windows import fill_gaps, split_ends, target_times, windows

SEASON = 52   # weeks: the seasonal-naive reference forecasts each week with the value a year before


class CO2DataModule(SplitDataModule):
    """Batches of (B x window x 1 inputs, B x horizon targets): the next `horizon` weeks from the
    `window` weeks before them.

    The series is split train, validation, test in time order; the 59 missing weeks are filled by
    interpolation within what each split may see (windows.fill_gaps), and a gap still open where a
    window's inputs end holds the last value seen (windows.windows); values are standardised
    with the mean and std of the training period. With `relative`, each window (inputs and
    targets) is taken relative to its last input value, so the model forecasts changes and can
    follow the trend above the levels it was trained on. Errors are the same either way.
    """

    def __init__(self, window: int = 104, horizon: int = 13, relative: bool = True, batch_size: int = 64,
                 val_fraction: float = 0.15, test_fraction: float = 0.15, num_workers: int = 0,
                 input_size: int | None = None, vocab_size: int | None = None,
                 folds: int | None = None, fold_strategy: str = "timeseries", fold: int | None = None):
        # input_size and vocab_size are read by the model's config, not here.
        # Folds keep time order: shuffled folds would train on weeks after those validated on.
        super().__init__(batch_size, num_workers, folds, fold_strategy, fold, fold_strategies=("timeseries",))
        if window < 1 or horizon < 1:
            raise ValueError(f"data.window={window}, data.horizon={horizon}: both must be at least 1")
        split_ends(100, val_fraction, test_fraction)   # checks the fractions now, before any work
        self.window = window
        self.horizon = horizon
        self.relative = relative
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.reference: dict[str, float] = {}

    def load_series(self) -> pd.Series:
        """Weekly ppm values with a DatetimeIndex; NaN where a week is missing."""
        from statsmodels.datasets import co2   # imported when used: statsmodels is slow to import

        return co2.load_pandas().data["co2"]

    def setup(self, stage: str | None = None) -> None:
        if self._splits is not None:
            return
        series = self.load_series()
        values = series.to_numpy(dtype=np.float64)
        train_end, val_end = split_ends(len(values), self.val_fraction, self.test_fraction)
        test_start = val_end
        if self.fold is not None:   # fold k: the weeks before its validation block train (TimeSeriesSplit)
            train, val = self.fold_indices(val_end, None, 0)
            train_end, val_end = int(train[-1]) + 1, int(val[-1]) + 1
        filled = fill_gaps(values, [train_end, val_end, len(values)])
        self.mean, self.std = float(filled[0].mean()), float(filled[0].std()) or 1.0
        scaled = [(v - self.mean) / self.std for v in filled]
        periods = {"train": (0, train_end), "val": (train_end, val_end), "test": (test_start, len(values))}
        observed = (values - self.mean) / self.std
        arrays = {name: windows(s, start, end, self.window, self.horizon, observed)
                  for s, (name, (start, end)) in zip(scaled, periods.items())}
        test_times = target_times(*periods["test"], self.window, self.horizon)
        lead = np.arange(1, self.horizon + 1)
        # The value one season before each target, or whole seasons before for leads beyond one.
        naive = scaled[2][test_times - SEASON * np.ceil(lead / SEASON).astype(int)]
        self.test_last = arrays["test"][0][:, -1].copy()
        if self.relative:
            arrays = {name: (x - x[:, -1:], y - x[:, -1:]) for name, (x, y) in arrays.items()}
            naive = naive - self.test_last[:, None]
        self.fingerprint = fingerprint(arrays)
        self.dates = series.index
        self.test_times = test_times
        self.test_actual = filled[2]
        self.test_naive = naive
        self.reference = {"test/seasonal_naive_rmse": float(np.sqrt(np.mean((naive - arrays["test"][1]) ** 2)))}
        self._splits = {name: TensorDataset(torch.tensor(x, dtype=torch.float32).unsqueeze(-1),
                                            torch.tensor(y, dtype=torch.float32))
                        for name, (x, y) in arrays.items()}

    def reference_metrics(self) -> dict[str, float]:
        """The seasonal-naive forecast's test RMSE, on the same targets and in the same units as test/rmse."""
        self.setup()
        return dict(self.reference)

    def to_ppm(self, forecasts: np.ndarray) -> np.ndarray:
        """Test forecasts (N x horizon, in the units the model sees) back in ppm."""
        if self.relative:
            forecasts = forecasts + self.test_last[:, None]
        return forecasts * self.std + self.mean

    @torch.no_grad()
    def figures(self, module: torch.nn.Module) -> dict:
        """{"forecast": the model's forecasts of the test period against what was measured}."""
        self.setup()
        x = self._splits["test"].tensors[0]
        device = next(module.parameters()).device
        was_training = module.training
        module.eval()
        try:
            predicted = torch.cat([module(batch.to(device)).cpu() for batch in x.split(256)]).numpy()
        finally:
            module.train(was_training)
        return {"forecast": forecast_figure(self.dates, self.test_actual, self.test_times,
                                            self.to_ppm(predicted), self.to_ppm(self.test_naive))}
