"""Example CSV files for data=tabular_csv, made from data sets scikit-learn ships (no download), with values removed.

    python -m sweeplab.data.tabular_examples OUT_DIR   # writes OUT_DIR/diabetes.csv, OUT_DIR/breast_cancer.csv

diabetes: 442 patients, 10 measurements (sex as a category) and a derived `bmi_band` category; target
`progression`, a disease progression score a year later (regression). breast_cancer: 569 tumours, 30
measurements of cell nuclei and a derived `size_band` category; target `diagnosis` (malignant, benign).
In both, 10% of every feature column's values are removed (seeded), so the imputation has work to do.
`data.example=NAME` writes the file to data.path when it is missing (the diabetes_mlp and
breast_cancer_mlp experiments do).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

MISSING_SHARE = 0.1   # of each feature column's values, removed
SEED = 0


def diabetes() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame.rename(columns={"target": "progression"})
    # The source codes sex as 1 and 2 without saying which is which; as text it is read as a category.
    frame["sex"] = frame["sex"].map({1.0: "sex1", 2.0: "sex2"})
    bands = pd.cut(frame["bmi"], [0, 25, 30, np.inf], right=False, labels=["normal", "overweight", "obese"])
    frame.insert(frame.columns.get_loc("bmi") + 1, "bmi_band", bands.astype(str))
    return _with_missing(frame, "progression")


def breast_cancer() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    frame = data.frame.drop(columns="target")
    bands = pd.qcut(frame["mean radius"], 3, labels=["small", "medium", "large"])
    frame.insert(frame.columns.get_loc("mean radius") + 1, "size_band", bands.astype(str))
    frame["diagnosis"] = np.asarray(data.target_names)[data.target]
    return _with_missing(frame, "diagnosis")


EXAMPLES = {"diabetes": diabetes, "breast_cancer": breast_cancer}


def _with_missing(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    """`MISSING_SHARE` of each feature column's values removed, at rows drawn with `SEED`; whole numbers
    are written without a decimal point (as a spreadsheet would)."""
    rng = np.random.default_rng(SEED)
    frame = frame.copy()
    for name in frame.columns.drop(target):
        column = frame[name].copy()
        if pd.api.types.is_float_dtype(column) and (column % 1 == 0).all():
            column = column.astype("Int64")
        rows = rng.choice(len(frame), size=round(MISSING_SHARE * len(frame)), replace=False)
        column.iloc[rows] = None
        frame[name] = column
    if pd.api.types.is_float_dtype(frame[target]) and (frame[target] % 1 == 0).all():
        frame[target] = frame[target].astype("int64")
    return frame


def write_example(name: str, path: Path) -> None:
    """The example data set `name` as a CSV file at `path`; written whole or not at all (a sweep's workers
    may write it at the same time)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")   # one per process, made with the user's umask
    EXAMPLES[name]().to_csv(partial, index=False)
    os.replace(partial, path)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(f"usage: python -m sweeplab.data.tabular_examples OUT_DIR   (writes {', '.join(EXAMPLES)} as .csv)",
              file=sys.stderr)
        return 2
    folder = Path(argv[0]).expanduser()
    for name in EXAMPLES:
        write_example(name, folder / f"{name}.csv")
        print(folder / f"{name}.csv")
    print(f"train on one: sweeplab train experiment=diabetes_mlp data.path={folder / 'diabetes.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
