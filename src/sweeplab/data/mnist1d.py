"""MNIST-1D (40-step signals, 10 classes), generated offline by the mnist1d package: seeded train/val split."""

from __future__ import annotations

import random

import numpy as np
import torch

from sweeplab.data.arrays import ArrayImageDataModule


class MNIST1DDataModule(ArrayImageDataModule):
    """The standard MNIST-1D: 5,000 signals, 4,000 train (of which `val_size` held out) and 1,000 test.

    Inputs are B x 40 x 1 (time-major, one channel), normalised with the training mean and std.
    """

    def __init__(self, batch_size: int = 64, val_size: int = 500, train_size: int | None = None,
                 num_samples: int = 5000, split_seed: int = 0, num_workers: int = 0, on_device: bool | str = "auto",
                 num_classes: int | None = None, input_size: int | None = None, vocab_size: int | None = None,
                 folds: int | None = None, fold_strategy: str = "stratified", fold: int | None = None):
        # num_classes, input_size and vocab_size are read by the model's config, not here.
        super().__init__(batch_size, train_size, augment=False, num_workers=num_workers, split_seed=split_seed,
                         on_device=on_device, folds=folds, fold_strategy=fold_strategy, fold=fold)
        if num_samples < 100:
            raise ValueError(f"data.num_samples={num_samples}: must be at least 100")
        self.val_size = val_size
        self.num_samples = num_samples

    def load_arrays(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        x, y, x_test, y_test = _generate(self.num_samples)
        if not 0 < self.val_size < len(x):
            raise ValueError(f"data.val_size={self.val_size}: must be between 1 and {len(x) - 1}")
        order = np.random.default_rng(self.split_seed).permutation(len(x))
        val, train = np.sort(order[: self.val_size]), np.sort(order[self.val_size:])
        return {"train": (x[train], y[train]), "val": (x[val], y[val]), "test": (x_test, y_test)}

    def inputs(self, x: np.ndarray, mean: float, std: float) -> torch.Tensor:
        return ((torch.tensor(x, dtype=torch.float32) - mean) / std).unsqueeze(-1)


def _generate(num_samples: int) -> tuple[np.ndarray, ...]:
    """make_dataset, never get_dataset (which downloads); it reseeds numpy's and Python's global
    RNGs with the data set's own seed, so their state is put back afterwards."""
    from mnist1d.data import get_dataset_args, make_dataset   # imports matplotlib.pyplot: only when used

    args = get_dataset_args()
    args.num_samples = num_samples
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    return (data["x"].astype(np.float32), data["y"].astype(np.int64),
            data["x_test"].astype(np.float32), data["y_test"].astype(np.int64))
