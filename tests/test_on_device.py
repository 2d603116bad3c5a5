"""data.on_device: splits served from the trainer's device as index slices, the same batches as the CPU loader,
sharded per rank like Lightning's samplers under DDP (the DDP run itself: tests/test_ddp_e2e.py)."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import BatchSampler, DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

from conftest import run_cli
from sweeplab.config import compose_config
from sweeplab.data.digits import DigitsDataModule
from sweeplab.data.on_device import IndexedTensors, ShardBatches, loader, wanted


class SeenBatches(pl.Callback):
    """Every training batch as it reached the model, and whether they were slices of the split's tensors."""

    def __init__(self):
        self.batches: list[tuple[torch.Tensor, ...]] = []
        self.sliced = False

    def on_train_start(self, trainer, pl_module):
        self.sliced = isinstance(trainer.train_dataloader.dataset, IndexedTensors)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append(tuple(t.clone() for t in batch))


def train_digits(on_device: bool) -> tuple[dict[str, float], SeenBatches, DigitsDataModule]:
    """digits_cnn for 2 epochs of 8 shuffled batches (whole validation set) with the configured Trainer, then
    test: final metrics and the batches trained on."""
    cfg = compose_config(["experiment=digits_cnn", "trainer=cpu", "trainer.max_epochs=2",
                          "trainer.limit_train_batches=8", "trainer.enable_progress_bar=false",
                          f"data.on_device={str(on_device).lower()}"])
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    data = instantiate(cfg.data)
    module = instantiate(cfg.model, optimizer=instantiate(cfg.optimizer), scheduler=instantiate(cfg.scheduler))
    seen = SeenBatches()
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False, callbacks=[seen])
    trainer.fit(module, datamodule=data)
    metrics = {k: v.item() for k, v in trainer.callback_metrics.items()}
    trainer.test(module, datamodule=data, verbose=False)
    metrics.update({k: v.item() for k, v in trainer.callback_metrics.items() if k.startswith("test/")})
    return metrics, seen, data


def test_on_device_trains_exactly_like_the_cpu_loader():
    metrics_cpu, seen_cpu, _ = train_digits(on_device=False)
    metrics_dev, seen_dev, data = train_digits(on_device=True)
    assert seen_dev.sliced and not seen_cpu.sliced
    assert data._use_device is None and not data._moved   # the device copies were released at teardown
    assert len(seen_dev.batches) == len(seen_cpu.batches) == 2 * 8
    for (x_cpu, y_cpu), (x_dev, y_dev) in zip(seen_cpu.batches, seen_dev.batches):
        assert torch.equal(x_cpu, x_dev) and torch.equal(y_cpu, y_dev)
    assert {"val/loss", "val/acc", "test/loss", "test/acc"} <= metrics_dev.keys()
    assert metrics_dev == metrics_cpu


def test_sliced_batches_are_the_cpu_loaders_batches_in_its_order():
    x, y = torch.randn(101, 1, 8, 8), torch.arange(101)
    for shuffle in (True, False):
        torch.manual_seed(7)
        plain = [tuple(b) for b in DataLoader(TensorDataset(x, y), batch_size=16, shuffle=shuffle)]
        torch.manual_seed(7)
        sliced = [tuple(b) for b in loader((x, y), batch_size=16, shuffle=shuffle)]
        assert len(sliced) == len(plain) == 7
        assert all(torch.equal(a, b) for p, s in zip(plain, sliced) for a, b in zip(p, s))


@pytest.mark.parametrize("size", [1076, 1077])
def test_training_shards_cover_every_example_each_epoch_as_lightning_would(monkeypatch, size):
    monkeypatch.setenv("PL_GLOBAL_SEED", "42")
    data = range(size)
    orders = []
    for epoch in (0, 1):
        shards = []
        for rank in (0, 1):
            ours = ShardBatches(data, 32, shuffle=True, num_replicas=2, rank=rank)
            ours.set_epoch(epoch)
            lightnings = DistributedSampler(data, num_replicas=2, rank=rank, shuffle=True, seed=42)
            lightnings.set_epoch(epoch)
            batches = list(ours)
            assert batches == list(BatchSampler(lightnings, 32, drop_last=False)) and len(batches) == len(ours)
            shards.append([i for batch in batches for i in batch])
        # Equal steps on both ranks (DDP training needs them): an odd count repeats one example.
        assert len(shards[0]) == len(shards[1]) == (size + 1) // 2
        seen = shards[0] + shards[1]
        assert sorted(set(seen)) == list(range(size)) and len(seen) - size == size % 2
        orders.append(seen)
    assert orders[0] != orders[1]   # set_epoch reshuffles


def test_validation_shards_split_the_examples_exactly():
    data = range(361)
    shards = []
    for rank in (0, 1):
        ours = ShardBatches(data, 32, shuffle=False, num_replicas=2, rank=rank)
        lightnings = UnrepeatedDistributedSampler(data, num_replicas=2, rank=rank, shuffle=False)
        batches = list(ours)
        assert batches == list(BatchSampler(lightnings, 32, drop_last=False)) and len(batches) == len(ours)
        shards.append([i for batch in batches for i in batch])
    assert [len(s) for s in shards] == [181, 180]
    assert sorted(shards[0] + shards[1]) == list(range(361))


@pytest.mark.parametrize("value", ["yes", 1, "True"])
def test_bad_value_names_the_key_and_the_choices(value):
    with pytest.raises(ValueError, match=r"data.on_device=.*: must be auto, true or false"):
        DigitsDataModule(on_device=value)


def test_bad_value_exits_2_with_one_line_and_no_run(tmp_path):
    done = run_cli("train", "experiment=digits_cnn", "trainer=smoke", "data.on_device=yes", cwd=tmp_path)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-3000:]
    assert "data.on_device=yes: must be auto, true or false" in lines[0]
    assert not (tmp_path / "mlruns").exists()


def test_auto_is_off_on_cpu_and_a_choice_is_kept():
    assert wanted("auto", torch.device("cpu"), 1) is False
    assert wanted(True, torch.device("cpu"), 10**15) is True and wanted(False, torch.device("cpu"), 1) is False
