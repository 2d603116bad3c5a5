"""The shared shape of the array data modules (images, MNIST-1D): in-memory arrays, seeded splits, fingerprint."""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from sweeplab.data import on_device as device_data
from sweeplab.data.augment import shift_and_flip
from sweeplab.data.loaders import SplitDataModule


class ArrayImageDataModule(SplitDataModule):
    """Subclasses implement `load_arrays()`; this class splits, normalises and serves them.

    Normalisation uses the mean and std of the training examples actually used, so no
    validation or test pixel leaks into training. With `on_device` (see on_device.py) the splits
    are served from the trainer's device instead of through a CPU loader.
    """

    def __init__(self, batch_size: int, train_size: int | None, augment: bool,
                 num_workers: int, split_seed: int, on_device: bool | str = "auto",
                 folds: int | None = None, fold_strategy: str = "stratified", fold: int | None = None):
        super().__init__(batch_size, num_workers, folds, fold_strategy, fold)
        if train_size is not None and train_size < 1:
            raise ValueError(f"data.train_size={train_size}: must be a positive number or null (all)")
        device_data.check_choice(on_device)
        self.train_size = train_size
        self.augment = augment
        self.split_seed = split_seed
        self.on_device = on_device
        # The splits' tensors on the trainer's device, moved on first use (the device is known only once a
        # trainer is attached, after setup has already run) and released at teardown.
        self._moved: dict[str, tuple[torch.Tensor, ...]] = {}
        self._use_device: bool | None = None

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
        if self.fold is not None:
            arrays.update(self._fold_arrays(arrays))
            x_train = arrays["train"][0]
        self.fingerprint = fingerprint(arrays)
        mean = float(x_train.mean(dtype=np.float64))
        std = float(x_train.std(dtype=np.float64)) or 1.0
        self._splits = {
            name: TensorDataset(self.inputs(x, mean, std), torch.tensor(y, dtype=torch.long))
            for name, (x, y) in arrays.items()
        }

    def _fold_arrays(self, arrays: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """This fold's training and validation arrays, from the training and validation splits pooled."""
        x = np.concatenate([arrays["train"][0], arrays["val"][0]])
        y = np.concatenate([arrays["train"][1], arrays["val"][1]])
        train, val = self.fold_indices(len(x), y, self.split_seed)
        return {"train": (x[train], y[train]), "val": (x[val], y[val])}

    def inputs(self, x: np.ndarray, mean: float, std: float) -> torch.Tensor:
        """The model's input tensor for arrays `x`, normalised: images NxCxHxW here; subclasses may reshape."""
        return _images(x, mean, std)

    def _loader(self, split: str, shuffle: bool = False) -> DataLoader:
        tensors = self._device_tensors(split)
        if tensors is None:
            return super()._loader(split, shuffle)
        return device_data.loader(tensors, self.batch_size, shuffle)

    def _device_tensors(self, split: str) -> tuple[torch.Tensor, ...] | None:
        """The split's tensors on the trainer's root device when they are served from there, else None."""
        if self.trainer is None:
            return None   # called outside a trainer (a bare loop): there is no device to serve from
        device = self.trainer.strategy.root_device
        if self._use_device is None:
            nbytes = sum(t.nbytes for data in self._splits.values() for t in data.tensors)
            self._use_device = device_data.wanted(self.on_device, device, nbytes)
        if not self._use_device:
            return None
        if split not in self._moved:
            self._moved[split] = tuple(t.to(device) for t in self._splits[split].tensors)
        return self._moved[split]

    def teardown(self, stage: str) -> None:
        # A warm sweep worker runs many trials: GPU copies must not outlive the fit or test that used them.
        self._moved.clear()
        self._use_device = None

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
