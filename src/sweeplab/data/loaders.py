"""The shared base of the data modules: in-memory splits served as DataLoaders, and the model's input example."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset

from sweeplab.data import folds as fold_splits


class SplitDataModule(pl.LightningDataModule):
    """Subclasses fill `_splits` ({"train", "val", "test"} -> Dataset whose first tensor is the
    model's input) and `fingerprint` in `setup`; training is served shuffled, validation and test
    in order.

    With `fold` set (k-fold cross-validation, see folds.py), a subclass pools its training and
    validation examples, takes `fold_indices(...)` of them, and fits whatever it fits on data
    (normalisation, vocabulary) on that fold's training part only.
    """

    def __init__(self, batch_size: int, num_workers: int, folds: int | None = None,
                 fold_strategy: str = "stratified", fold: int | None = None,
                 fold_strategies: tuple[str, ...] = fold_splits.STRATEGIES):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"data.batch_size={batch_size}: must be at least 1")
        fold_splits.check(folds, fold, fold_strategy, fold_strategies)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.folds = folds
        self.fold_strategy = fold_strategy
        self.fold = fold
        self.fingerprint: str | None = None
        self._splits: dict[str, Dataset] | None = None

    def train_dataloader(self) -> DataLoader:
        # Shuffling draws from torch's global RNG, which the run's `seed` sets.
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def _loader(self, split: str, shuffle: bool = False) -> DataLoader:
        sampler = None
        if not shuffle and torch.distributed.is_available() and torch.distributed.is_initialized():
            # Under DDP, Lightning's DistributedSampler pads each rank's shard to equal length by
            # repeating examples, so validation and test metrics would count some twice. This one
            # splits the examples exactly (shards may differ by one); Lightning keeps a sampler
            # that already is a DistributedSampler.
            sampler = UnrepeatedDistributedSampler(self._splits[split], shuffle=False)
        return DataLoader(self._splits[split], batch_size=self.batch_size, shuffle=shuffle, sampler=sampler,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def fold_indices(self, n: int, labels, seed: int) -> tuple:
        """(train, validation) indices of this module's fold among `n` pooled examples."""
        return fold_splits.split(n, labels, self.folds, self.fold, self.fold_strategy, seed)

    def example_input(self, n: int = 2) -> torch.Tensor:
        """The first `n` real validation inputs: the input example stored with the model."""
        self.setup()
        return self._splits["val"].tensors[0][:n]
