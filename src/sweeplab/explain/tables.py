"""Per-feature mean |attribution| over the explained examples: pixels (H x W), words, input steps or columns."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sweeplab.explain.attribute import Attributions
from sweeplab.explain.kinds import Kind

TOP_WORDS = 50   # rows of a text model's table: the words with the largest mean |attribution|


@dataclass
class Table:
    features: list[str]              # one name per feature (row); images: "row,column" per pixel
    values: dict[str, np.ndarray]    # method -> mean |attribution| per feature (images: H x W)


def mean_abs(attributions: Attributions, words: list[list[tuple[int, str]]] | None = None,
             columns: list[str] | None = None) -> Table:
    """Channels are summed first (as Captum's image visualisation does), then |.| is averaged over the
    examples; a word's value is the mean over its occurrences in the examples' texts."""
    kind, maps = attributions.kind, {k: v.double().numpy() for k, v in attributions.maps.items()}
    if kind is Kind.IMAGES:
        values = {k: np.abs(v.sum(1)).mean(0) for k, v in maps.items()}
        height, width = next(iter(values.values())).shape
        return Table([f"{r},{c}" for r in range(height) for c in range(width)], values)
    if kind is Kind.STEPS:
        values = {k: np.abs(v.sum(2)).mean(0) for k, v in maps.items()}
        steps = len(next(iter(values.values())))
        return Table([f"t-{steps - i}" for i in range(steps)], values)
    if kind is Kind.FEATURES:
        width = next(iter(maps.values())).shape[1]
        # The data module's column names when they name every input; else x0, x1, ...
        names = columns if columns and len(columns) == width else [f"x{i}" for i in range(width)]
        return Table(list(names), {k: np.abs(v).mean(0) for k, v in maps.items()})
    return _words(maps, words)


def _words(maps: dict[str, np.ndarray], words: list[list[tuple[int, str]]]) -> Table:
    seen: dict[str, list[tuple[int, int]]] = {}   # word -> (example, position) of each occurrence
    for row, text in enumerate(words):
        for position, word in text:
            seen.setdefault(word, []).append((row, position))
    values = {k: np.array([np.mean([abs(v[r, p]) for r, p in places]) for places in seen.values()])
              for k, v in maps.items()}
    names, first = list(seen), values[next(iter(values))]
    order = sorted(range(len(names)), key=lambda i: (-first[i], names[i]))[:TOP_WORDS]
    return Table([names[i] for i in order], {k: v[order] for k, v in values.items()})


def write(table: Table, attributions: Attributions, folder: Path, about: dict) -> list[Path]:
    """`mean_abs_attribution.json` (everything), and CSV: one H x W grid per method for images
    (`mean_abs_attribution_<method>.csv`), else `mean_abs_attribution.csv`, a row per feature."""
    written = []
    if attributions.kind is Kind.IMAGES:
        for method, grid in table.values.items():
            path = folder / f"mean_abs_attribution_{method}.csv"
            np.savetxt(path, grid, delimiter=",", fmt="%.9g")
            written.append(path)
    else:
        path = folder / "mean_abs_attribution.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(["feature", *table.values])
            for i, name in enumerate(table.features):
                out.writerow([name, *(f"{v[i]:.9g}" for v in table.values.values())])
        written.append(path)
    path = folder / "mean_abs_attribution.json"
    shape = list(next(iter(table.values.values())).shape)
    document = {**about, "kind": attributions.kind.value, "target": attributions.target_text,
                "baselines": attributions.baselines,
                "features": table.features if attributions.kind is not Kind.IMAGES else {"shape": shape},
                "mean_abs_attribution": {k: v.tolist() for k, v in table.values.items()}}
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return [*written, path]
