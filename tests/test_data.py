"""Data modules on the real data sets: splits, subsets, normalisation, fingerprints."""

import gzip

import numpy as np
import pytest
import torch

from sweeplab.data.digits import DigitsDataModule
from sweeplab.data.fashion_mnist import FashionMNISTDataModule
from sweeplab.data.idx import read_idx


def test_idx_reader_round_trip(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    header = bytes([0, 0, 0x08, 3]) + b"".join(int(n).to_bytes(4, "big") for n in images.shape)
    path = tmp_path / "x-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(header + images.tobytes()))
    assert np.array_equal(read_idx(path), images)
    path.write_bytes(gzip.compress(header + images.tobytes()[:-1]))
    with pytest.raises(ValueError, match="header says"):
        read_idx(path)


def test_fashion_split_subset_and_normalisation(fashion_available):
    dm = FashionMNISTDataModule(root="/usr/share/datasets/fashion-mnist", val_size=2000,
                                train_size=3000, batch_size=128)
    dm.setup("fit")
    train, val, test = (dm._splits[s].tensors for s in ("train", "val", "test"))
    assert train[0].shape == (3000, 1, 28, 28) and val[0].shape[0] == 2000 and test[0].shape[0] == 10000
    # Normalised with the statistics of the 3,000 training images only.
    assert abs(train[0].mean().item()) < 1e-4 and abs(train[0].std().item() - 1) < 1e-3
    assert set(train[1].unique().tolist()) == set(range(10))
    again = FashionMNISTDataModule(root="/usr/share/datasets/fashion-mnist", val_size=2000, train_size=3000)
    again.setup("fit")
    assert again.fingerprint == dm.fingerprint
    other = FashionMNISTDataModule(root="/usr/share/datasets/fashion-mnist", val_size=2000, train_size=3001)
    other.setup("fit")
    assert other.fingerprint != dm.fingerprint


def test_fashion_missing_folder_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        FashionMNISTDataModule(root=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.gz is missing"):
        FashionMNISTDataModule(root=str(tmp_path))


def test_digits_splits_are_disjoint_and_seeded():
    dm = DigitsDataModule(split_seed=3)
    dm.setup()
    sizes = {s: len(dm._splits[s]) for s in ("train", "val", "test")}
    assert sum(sizes.values()) == 1797 and sizes["val"] == sizes["test"] == pytest.approx(360, abs=2)
    rows = {s: {tuple(x.flatten().tolist()) for x in dm._splits[s].tensors[0]} for s in sizes}
    assert not rows["val"] & rows["test"]
    again = DigitsDataModule(split_seed=3)
    again.setup()
    assert again.fingerprint == dm.fingerprint
    with pytest.raises(ValueError, match="only"):
        small = DigitsDataModule(train_size=100_000)
        small.setup()


def test_augmentation_keeps_shape_and_changes_images():
    from sweeplab.data.augment import shift_and_flip

    torch.manual_seed(0)
    x = torch.randn(16, 1, 28, 28)
    y = shift_and_flip(x)
    assert y.shape == x.shape and not torch.equal(x, y)
