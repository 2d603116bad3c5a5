"""Rows of any CSV file with a target column (data.path, data.target): classes or values from numbers and categories."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from torch.utils.data import TensorDataset

from sweeplab.data import folds as fold_splits
from sweeplab.data.arrays import fingerprint
from sweeplab.data.loaders import SplitDataModule
from sweeplab.data.tabular_columns import TASKS, class_names, read_table, regression_targets
from sweeplab.data.tabular_examples import EXAMPLES, write_example
from sweeplab.extras import RowPreprocessing

MIN_ROWS = 10   # rows with a target, below which no three splits can be made


class TabularCSVDataModule(SplitDataModule):
    """Batches of (B x features float32, targets): class indices (classification) or B x 1 values (regression).

    Missing values are imputed (a numeric column's median, a categorical column's most frequent value),
    numeric columns standardised and categorical ones one-hot encoded (a category never seen in
    training encodes as all zeros), every statistic taken from the training rows actually used: the
    training split, or with `fold` set that fold's training rows. Regression targets are standardised
    the same way when `scale_target` (the metrics are then in training standard deviations). Rows
    without a target are left out. The exported model takes raw rows (extras.RawRows): the fitted
    preprocessing is stored with it.

    `numeric` and `categorical` name the columns read (null: inferred, numbers numeric and anything
    else categorical; `exclude` leaves columns out of the inference). Splits are seeded by
    `split_seed` and stratified by class for classification; `fold_strategy=timeseries` keeps the
    file's row order instead (test: the last rows; each fold validates after the rows it trains on).
    """

    def __init__(self, path: str | None, target: str | None, task: str = "classification",
                 numeric: list[str] | None = None, categorical: list[str] | None = None,
                 exclude: list[str] | None = None, example: str | None = None, scale_target: bool = True,
                 num_classes: int | None = None, input_size: int | None = None, batch_size: int = 32,
                 train_size: int | None = None, val_fraction: float = 0.15, test_fraction: float = 0.15,
                 split_seed: int = 0, num_workers: int = 0,
                 folds: int | None = None, fold_strategy: str = "kfold", fold: int | None = None):
        # input_size (the model's input width) is read by the model's config and checked here.
        if task not in TASKS:
            raise ValueError(f"data.task={task}: must be classification or regression")
        # Stratified folds need classes.
        strategies = fold_splits.STRATEGIES if task == "classification" else ("kfold", "timeseries")
        super().__init__(batch_size, num_workers, folds, fold_strategy, fold, fold_strategies=strategies)
        if not path:
            raise ValueError("data.path is not set: give a CSV file with a header row, "
                             "e.g. data.path=houses.csv data.target=price data.task=regression")
        if not target:
            raise ValueError(f"data.target is not set: name the column of data.path={path} to predict")
        if example is not None and example not in EXAMPLES:
            raise ValueError(f"data.example={example}: must be one of {', '.join(EXAMPLES)}, "
                             "or null (data.path is a file of yours)")
        self.path = Path(path).expanduser()
        if example is None and not self.path.is_file():
            raise FileNotFoundError(f"data.path={path}: no such file; give a CSV file with a header row "
                                    f"naming data.target={target}, or data.example={'|'.join(EXAMPLES)} to have "
                                    "one written there (python -m sweeplab.data.tabular_examples DIR writes them all)")
        if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
            raise ValueError("data.val_fraction and data.test_fraction must be in (0, 1) and sum to less than 1")
        if task == "classification" and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                         or num_classes < 2):
            raise ValueError(f"data.num_classes={num_classes}: data.task=classification needs the number of "
                             "classes in the target column (2 or more)")
        if task == "regression" and num_classes is not None:
            raise ValueError(f"data.num_classes={num_classes}: data.task=regression has no classes; set it to null")
        if train_size is not None and train_size < 1:
            raise ValueError(f"data.train_size={train_size}: must be a positive number or null (all)")
        if input_size is not None and input_size < 1:
            raise ValueError(f"data.input_size={input_size}: must be a positive number or null (from the data)")
        self.target = target
        self.task = task
        self.numeric = list(numeric) if numeric is not None else None
        self.categorical = list(categorical) if categorical is not None else None
        self.exclude = list(exclude or [])
        self.example = example
        self.scale_target = scale_target
        self.num_classes = num_classes
        self.input_size = input_size
        self.train_size = train_size
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        # Set by setup: each split's rows (0-based data rows of the file), the columns read (numeric,
        # categorical), the names of the network's inputs (`age`, `sex_sex1`: a category's one-hot column),
        # the fitted preprocessing, the class names (None: regression), the target's scale.
        self.split_rows: dict[str, np.ndarray] = {}
        self.columns: tuple[list[str], list[str]] = ([], [])
        self.feature_names: list[str] = []
        self.transformer: ColumnTransformer | None = None
        self.classes: list[str] | None = None
        self.target_mean, self.target_std = 0.0, 1.0
        self.reference: dict[str, float] = {}

    def describe(self) -> str:
        return f"data.path={self.path}"

    def prepare_data(self) -> None:
        if self.example is not None and not self.path.is_file():
            write_example(self.example, self.path)

    def setup(self, stage: str | None = None) -> None:
        if self._splits is not None:
            return
        table, numeric, categorical = read_table(self.path, self.target, self.numeric, self.categorical,
                                                 self.exclude, self.task)
        targets, classes = self._targets(table[self.target])
        rows = np.flatnonzero(~np.isnan(targets) if classes is None else targets >= 0)
        if len(rows) < MIN_ROWS:
            raise ValueError(f"{self.describe()}: only {len(rows)} rows have a value in column {self.target!r}; "
                             f"at least {MIN_ROWS} are needed for training, validation and test rows")
        splits = {name: rows[positions] for name, positions in self._split(targets[rows], classes).items()}
        features = table[numeric + categorical]
        transformer = _preprocessing(numeric, categorical).fit(features.iloc[splits["train"]])
        names = [str(name) for name in transformer.get_feature_names_out()]
        width = len(names)
        if self.input_size is not None and self.input_size != width:
            raise ValueError(f"data.input_size={self.input_size}: the rows of {self.path} encode to {width} "
                             f"inputs ({len(numeric)} numeric, {width - len(numeric)} one-hot); set "
                             f"data.input_size={width}, or null to let the model take it from the data")
        y = {name: targets[split] for name, split in splits.items()}
        mean, std = 0.0, 1.0
        if classes is None and self.scale_target:
            mean, std = float(y["train"].mean()), float(y["train"].std()) or 1.0
            y = {name: (values - mean) / std for name, values in y.items()}
        x = {name: np.asarray(transformer.transform(features.iloc[split]), dtype=np.float32)
             for name, split in splits.items()}
        y = {name: values.astype(np.int64) if classes is not None else values.astype(np.float32)[:, None]
             for name, values in y.items()}
        self.fingerprint = fingerprint({name: (x[name], y[name]) for name in splits})
        self.split_rows = splits
        self.columns = (numeric, categorical)
        self.feature_names = names
        self.classes = classes
        self.transformer = transformer
        self.target_mean, self.target_std = mean, std
        self._raw_val = features.iloc[splits["val"]].reset_index(drop=True)
        self.reference = _baseline(y["train"], y["test"], classes is not None)
        self._splits = {name: TensorDataset(torch.from_numpy(x[name]), torch.from_numpy(y[name])) for name in splits}

    def _targets(self, column: pd.Series) -> tuple[np.ndarray, list[str] | None]:
        """(targets, class names): class indices (-1: missing) and the classes, or floats (NaN: missing) and None."""
        if self.task == "regression":
            return regression_targets(column, self.target), None
        classes = class_names(column.dropna())
        if len(classes) != self.num_classes:
            shown = ", ".join(classes[:10]) + (", ..." if len(classes) > 10 else "")
            # Many classes that are all numbers: most likely a value to predict.
            hint = " (or data.task=regression)" if len(classes) > 20 and _all_numbers(classes) else ""
            raise ValueError(f"data.num_classes={self.num_classes}: column {self.target!r} of {self.path} has "
                             f"{len(classes)} classes ({shown}); set data.num_classes={len(classes)}{hint}")
        index = {name: i for i, name in enumerate(classes)}
        return column.map(index).fillna(-1).to_numpy(dtype=np.int64), classes

    def _split(self, targets: np.ndarray, classes: list[str] | None) -> dict[str, np.ndarray]:
        """Positions among the rows with a target of the training, validation and test rows (each sorted).

        The test rows are held out first and are the same with or without folds."""
        positions = np.arange(len(targets))
        labels = targets if classes is not None else None
        in_order = self.fold_strategy == "timeseries"
        try:
            if in_order:
                n_test = math.ceil(len(positions) * self.test_fraction)
                rest, test = positions[:-n_test], positions[-n_test:]
            else:
                rest, test = train_test_split(positions, test_size=self.test_fraction, stratify=labels,
                                              random_state=self.split_seed)
                rest = np.sort(rest)
            if self.fold is not None:   # cross-validation: fold `fold` of what is not test validates
                train, val = self.fold_indices(len(rest), labels[rest] if labels is not None else None,
                                               self.split_seed)
                train, val = rest[train], rest[val]
            elif in_order:
                n_val = math.ceil(len(rest) * self.val_fraction / (1 - self.test_fraction))
                train, val = rest[:-n_val], rest[-n_val:]
            else:
                train, val = train_test_split(rest, test_size=self.val_fraction / (1 - self.test_fraction),
                                              stratify=labels[rest] if labels is not None else None,
                                              random_state=self.split_seed)
        except ValueError as e:   # scikit-learn's: a class too rare to stratify, too few rows for the fractions
            raise ValueError(f"{self.describe()}: cannot split its {len(positions)} rows ({e})") from None
        if self.train_size is not None:
            if self.train_size > len(train):
                raise ValueError(f"data.train_size={self.train_size}: only {len(train)} training rows are available")
            train = np.random.default_rng(self.split_seed).permutation(train)[: self.train_size]
        return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}

    def raw_rows(self, n: int = 2) -> pd.DataFrame:
        """The first `n` validation rows as read from the file (feature columns only): the rows of example_input."""
        self.setup()
        return self._raw_val.head(n).copy()

    def row_preprocessing(self) -> RowPreprocessing:
        self.setup()
        numeric, categorical = self.columns
        return RowPreprocessing(self.transformer, list(numeric), list(categorical), self.target,
                                classes=self.classes, target_mean=self.target_mean, target_std=self.target_std)

    def reference_metrics(self) -> dict[str, float]:
        """A model that ignores the features, on the test rows: the training mean's RMSE (regression, in the
        units of test/rmse) or the most frequent training class's accuracy (classification)."""
        self.setup()
        return dict(self.reference)


def _preprocessing(numeric: list[str], categorical: list[str]) -> ColumnTransformer:
    parts = []
    if numeric:
        # keep_empty_features: a column with no value in the training rows still takes its place (as 0).
        parts.append(("numeric", Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                                           ("scale", StandardScaler())]), numeric))
    if categorical:
        parts.append(("categorical", Pipeline([
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("one_hot", OneHotEncoder(handle_unknown="ignore", sparse_output=False))]), categorical))
    # Plain output names (`age`, `sex_sex1`), as explanations of the network's inputs show them.
    return ColumnTransformer(parts, sparse_threshold=0, verbose_feature_names_out=False)


def _baseline(train: np.ndarray, test: np.ndarray, classification: bool) -> dict[str, float]:
    if classification:
        majority = np.bincount(train).argmax()
        return {"test/majority_class_acc": float(np.mean(test == majority))}
    return {"test/train_mean_rmse": float(np.sqrt(np.mean((test - train.mean()) ** 2)))}


def _all_numbers(names: list[str]) -> bool:
    return bool(pd.to_numeric(pd.Series(names), errors="coerce").notna().all())
