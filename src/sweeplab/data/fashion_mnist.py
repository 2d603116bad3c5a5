"""Fashion-MNIST from the standard IDX .gz files: seeded train/val split, the test file as test set."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sweeplab.data.arrays import ArrayImageDataModule
from sweeplab.data.class_subset import check_classes, keep_classes
from sweeplab.data.idx import read_idx

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


class FashionMNISTDataModule(ArrayImageDataModule):
    def __init__(self, root: str, val_size: int = 5000, batch_size: int = 64,
                 train_size: int | None = None, augment: bool = False, num_workers: int = 0,
                 split_seed: int = 0, on_device: bool | str = "auto",
                 input_shape: list[int] | None = None, num_classes: int | None = None,
                 folds: int | None = None, fold_strategy: str = "stratified", fold: int | None = None,
                 classes: list[int] | None = None):
        super().__init__(batch_size, train_size, augment, num_workers, split_seed, on_device,
                         folds, fold_strategy, fold)
        check_classes(classes, num_classes, len(CLASS_NAMES))
        self.classes = None if classes is None else [int(c) for c in classes]
        self.root = Path(root).expanduser()
        self.val_size = val_size
        self.paths = {key: _find(self.root, name) for key, name in FILES.items()}

    def load_arrays(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        images, labels = read_idx(self.paths["train_images"]), read_idx(self.paths["train_labels"])
        if not 0 < self.val_size < len(images):
            raise ValueError(f"data.val_size={self.val_size}: must be between 1 and {len(images) - 1}")
        order = np.random.default_rng(self.split_seed).permutation(len(images))
        val, train = np.sort(order[: self.val_size]), np.sort(order[self.val_size:])
        arrays = {
            "train": (images[train], labels[train]),
            "val": (images[val], labels[val]),
            "test": (read_idx(self.paths["test_images"]), read_idx(self.paths["test_labels"])),
        }
        if self.classes is None:
            return arrays
        # Filtered after the split, so the same seed holds out the same images whichever classes are kept.
        return {name: keep_classes(x, y, self.classes) for name, (x, y) in arrays.items()}


def _find(root: Path, name: str) -> Path:
    for candidate in (root / f"{name}.gz", root / name):
        if candidate.is_file():
            return candidate
    if not root.is_dir():
        raise FileNotFoundError(
            f"data.root={root}: no such directory; install the Debian package dataset-fashion-mnist "
            "(apt-get install dataset-fashion-mnist) or point data.root at a folder with the "
            "four Fashion-MNIST IDX files")
    raise FileNotFoundError(f"data.root={root}: {name}.gz is missing; the folder must hold "
                            f"{', '.join(n + '.gz' for n in FILES.values())}")
