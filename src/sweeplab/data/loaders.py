"""The shared base of the data modules: in-memory splits served as DataLoaders, and the model's input example."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset


class SplitDataModule(pl.LightningDataModule):
    """Subclasses fill `_splits` ({"train", "val", "test"} -> Dataset whose first tensor is the
    model's input) and `fingerprint` in `setup`; training is served shuffled, validation and test
    in order."""

    def __init__(self, batch_size: int, num_workers: int):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"data.batch_size={batch_size}: must be at least 1")
        self.batch_size = batch_size
        self.num_workers = num_workers
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

    def example_input(self, n: int = 2) -> torch.Tensor:
        """The first `n` real validation inputs: the input example stored with the model."""
        self.setup()
        return self._splits["val"].tensors[0][:n]
