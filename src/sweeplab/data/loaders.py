"""DataLoaders over a data module's in-memory splits: training shuffled, validation and test in order."""

from __future__ import annotations

from torch.utils.data import DataLoader, Dataset


class SplitLoaders:
    """Mixed into a LightningDataModule that fills `_splits` ({"train", "val", "test"} -> Dataset) in setup."""

    batch_size: int
    num_workers: int
    _splits: dict[str, Dataset] | None

    def train_dataloader(self) -> DataLoader:
        # Shuffling draws from torch's global RNG, which the run's `seed` sets.
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def _loader(self, split: str, shuffle: bool = False) -> DataLoader:
        return DataLoader(self._splits[split], batch_size=self.batch_size, shuffle=shuffle,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)
