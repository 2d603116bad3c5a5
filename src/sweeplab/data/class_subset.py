"""data.classes: keep only some labels of a classification data set, renumbered 0..k-1 in the order given."""

from __future__ import annotations

import numpy as np


def check_classes(classes: list[int] | None, num_classes: int | None, available: int) -> None:
    """One line on a bad `data.classes` (or a `data.num_classes` that disagrees with it)."""
    if classes is None:
        return
    if not classes or len(set(classes)) != len(classes) or not all(0 <= int(c) < available for c in classes):
        raise ValueError(f"data.classes={list(classes)}: must be distinct labels from 0 to {available - 1}, "
                         "e.g. [5, 6, 7, 8, 9]")
    if num_classes is not None and num_classes != len(classes):
        raise ValueError(f"data.num_classes={num_classes}: data.classes keeps {len(classes)} classes; "
                         f"set data.num_classes={len(classes)}")


def keep_classes(x: np.ndarray, y: np.ndarray, classes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The examples labelled with one of `classes`, relabelled by position in it ([5, 6] -> 5 is 0, 6 is 1)."""
    renumber = np.full(int(max(y.max(), max(classes))) + 1, -1, dtype=np.int64)
    renumber[list(classes)] = np.arange(len(classes))
    kept = renumber[y] >= 0
    return x[kept], renumber[y[kept]].astype(y.dtype)
