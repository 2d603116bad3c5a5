"""The shared shape of the array data modules (images, MNIST-1D): in-memory arrays, seeded splits, fingerprint."""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch.utils.data import TensorDataset

from sweeplab.data.augment import shift_and_flip
from sweeplab.data.loaders import SplitDataModule


class ArrayImageDataModule(SplitDataModule):
    """Subclasses implement `load_arrays()`; this class splits, normalises and serves them.

    Normalisation uses the mean and std of the training examples actually used, so no
    validation or test pixel leaks into training.
    """

    def __init__(self, batch_size: int, train_size: int | None, augment: bool,
                 num_workers: int, split_seed: int):
        super().__init__(batch_size, num_workers)
        if train_size is not None and train_size < 1:
            raise ValueError(f"data.train_size={train_size}: must be a positive number or null (all)")
        self.train_size = train_size
        self.augment = augment
        self.split_seed = split_seed

    def load_arrays(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Return {"train": (x, y), "val": (x, y), "test": (x, y)}: uint8/float images NxHxW, int labels."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self._splits is not None:
            return
        arrays = self.load_arrays()
        x_train, y_train = arrays["train"]
        if self.train_size is not None:
            if self.train_size > len(x_train):
                raise ValueError(f"data.train_size={self.train_size}: only {len(x_train)} "
                                 "training examples are available")
            keep = np.random.default_rng(self.split_seed).permutation(len(x_train))[: self.train_size]
            x_train, y_train = x_train[np.sort(keep)], y_train[np.sort(keep)]
            arrays["train"] = (x_train, y_train)
        self.fingerprint = fingerprint(arrays)
        mean = float(x_train.mean(dtype=np.float64))
        std = float(x_train.std(dtype=np.float64)) or 1.0
        self._splits = {
            name: TensorDataset(self.inputs(x, mean, std), torch.tensor(y, dtype=torch.long))
            for name, (x, y) in arrays.items()
        }

    def inputs(self, x: np.ndarray, mean: float, std: float) -> torch.Tensor:
        """The model's input tensor for arrays `x`, normalised: images NxCxHxW here; subclasses may reshape."""
        return _images(x, mean, std)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        # Augment whole batches on the device: far cheaper than per-image transforms.
        if self.augment and self.trainer is not None and self.trainer.training:
            x, y = batch
            return shift_and_flip(x), y
        return batch


def _images(x: np.ndarray, mean: float, std: float) -> torch.Tensor:
    images = torch.tensor(x, dtype=torch.float32)
    if images.ndim == 3:
        images = images.unsqueeze(1)
    return (images - mean) / std


def fingerprint(arrays: dict[str, tuple[np.ndarray, np.ndarray]]) -> str:
    """A short hash of exactly the arrays used (after subsetting), in split order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        for array in arrays[name]:
            a = np.ascontiguousarray(array)
            digest.update(f"{name}:{a.dtype}:{a.shape}".encode())
            digest.update(a.tobytes())
    return digest.hexdigest()[:16]
