"""Array splits held on the training device (data.on_device): each batch is one index slice of the split's tensors."""

from __future__ import annotations

import math
import os
from typing import Iterator, Sequence

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler
from torch.utils.data.distributed import DistributedSampler

CHOICES = "auto, true or false"
# `auto` leaves the rest of the free GPU memory to the model's weights, activations and optimizer state.
SHARE_OF_FREE_MEMORY = 0.25


def check_choice(value: bool | str) -> None:
    """data.on_device is `auto` or a bool (`1` is not `true`: a typo should not pass as a choice)."""
    if not (isinstance(value, bool) or value == "auto"):
        raise ValueError(f"data.on_device={value}: must be {CHOICES}")


def wanted(choice: bool | str, device: torch.device, nbytes: int) -> bool:
    """Whether the splits go on `device`: as chosen, or for `auto` only on a GPU with room to spare."""
    if choice != "auto":
        return choice
    if device.type != "cuda":
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= SHARE_OF_FREE_MEMORY * free


class IndexedTensors(Dataset):
    """Tensors of equal length; item `[i, j, ...]` is the batch of those rows, one gather per tensor."""

    def __init__(self, tensors: Sequence[torch.Tensor]):
        self.tensors = tuple(tensors)

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        index = torch.as_tensor(indices, device=self.tensors[0].device)
        return tuple(t.index_select(0, index) for t in self.tensors)


class ShardBatches(DistributedSampler):
    """This rank's shard of a split as lists of up to `batch_size` indices, the very batches a DataLoader
    would make of Lightning's own sampler: shuffled shards (training) are drawn and padded as Lightning's
    DistributedSampler draws them (seed `PL_GLOBAL_SEED`, reshuffled by `set_epoch`), ordered ones
    (validation, test) are split exactly, as UnrepeatedDistributedSampler splits them, so no example
    counts twice in a metric.

    It must be a DistributedSampler: Lightning puts one around any other sampler of a DDP run's loader,
    which would shard these batches a second time.
    """

    def __init__(self, data: Dataset, batch_size: int, *, shuffle: bool,
                 num_replicas: int | None = None, rank: int | None = None):
        super().__init__(data, num_replicas=num_replicas, rank=rank, shuffle=shuffle,
                         seed=int(os.environ.get("PL_GLOBAL_SEED", 0)))
        self.batch_size = batch_size
        if not shuffle:
            # No padding: DistributedSampler.__iter__ pads up to total_size, so make that the data's size.
            self.num_samples = len(range(self.rank, len(data), self.num_replicas))
            self.total_size = len(data)

    def __iter__(self) -> Iterator[list[int]]:
        shard = list(super().__iter__())
        for start in range(0, len(shard), self.batch_size):
            yield shard[start:start + self.batch_size]

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.batch_size)


def loader(tensors: Sequence[torch.Tensor], batch_size: int, shuffle: bool) -> DataLoader:
    """Batches of `tensors` as slices where they lie, in the order DataLoader(shuffle=shuffle) would give."""
    data = IndexedTensors(tensors)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        batches = ShardBatches(data, batch_size, shuffle=shuffle)
    else:
        # The samplers DataLoader(shuffle=...) itself uses: the same global-RNG draws, the same batches.
        order = RandomSampler(data) if shuffle else SequentialSampler(data)
        batches = BatchSampler(order, batch_size, drop_last=False)
    # batch_size=None: each item the sampler names is already a whole batch. No worker processes: a
    # slice costs less than handing a batch between processes, and workers cannot share GPU tensors.
    return DataLoader(data, batch_size=None, sampler=batches, num_workers=0)
