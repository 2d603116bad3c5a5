"""scikit-learn's 8x8 digits as a DataModule: seeded stratified train/val/test split."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sweeplab.data.arrays import ArrayImageDataModule


class DigitsDataModule(ArrayImageDataModule):
    def __init__(self, batch_size: int = 32, train_size: int | None = None,
                 val_fraction: float = 0.2, test_fraction: float = 0.2, augment: bool = False,
                 num_workers: int = 0, split_seed: int = 0, on_device: bool | str = "auto",
                 input_shape: list[int] | None = None, num_classes: int | None = None,
                 folds: int | None = None, fold_strategy: str = "stratified", fold: int | None = None):
        super().__init__(batch_size, train_size, augment, num_workers, split_seed, on_device,
                         folds, fold_strategy, fold)
        if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
            raise ValueError("data.val_fraction and data.test_fraction must be in (0, 1) "
                             "and sum to less than 1")
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction

    def load_arrays(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        digits = load_digits()
        x, y = digits.images.astype(np.float32), digits.target.astype(np.int64)
        x_rest, x_test, y_rest, y_test = train_test_split(
            x, y, test_size=self.test_fraction, stratify=y, random_state=self.split_seed)
        x_train, x_val, y_train, y_val = train_test_split(
            x_rest, y_rest, test_size=self.val_fraction / (1 - self.test_fraction),
            stratify=y_rest, random_state=self.split_seed)
        return {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}
