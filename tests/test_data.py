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


def _flip_and_shift_of(x: torch.Tensor, y: torch.Tensor, max_shift: int) -> tuple[bool, int, int] | None:
    """(flipped, dx, dy) such that y is x, flipped or not, moved by (dx, dy) pixels with its edge
    pixels repeated into the gap; None when no flip and shift of at most max_shift explains y."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    for flipped in (False, True):
        padded = F.pad((x.flip(-1) if flipped else x)[None], (max_shift,) * 4, mode="replicate")[0]
        for dy in range(2 * max_shift + 1):
            for dx in range(2 * max_shift + 1):
                if torch.equal(padded[:, dy: dy + h, dx: dx + w], y):
                    return flipped, max_shift - dx, max_shift - dy
    return None


def test_augmentation_flips_and_shifts_each_image_within_max_shift():
    from sweeplab.data.augment import shift_and_flip

    torch.manual_seed(0)
    seen = []
    for _ in range(8):
        x = torch.randn(16, 1, 28, 28)
        y = shift_and_flip(x, max_shift=2)
        assert y.shape == x.shape
        for before, after in zip(x, y):
            found = _flip_and_shift_of(before, after, max_shift=2)
            assert found is not None, "an augmented image is not a flip and shift of at most 2 pixels"
            seen.append(found)
    assert {flipped for flipped, _, _ in seen} == {False, True}
    # Shifts change images beyond what a flip explains, both ways along both axes.
    dxs, dys = [dx for _, dx, _ in seen], [dy for _, _, dy in seen]
    assert min(dxs) < 0 < max(dxs) and min(dys) < 0 < max(dys)
