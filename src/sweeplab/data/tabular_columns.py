"""A table's columns read and checked: which are numeric, which categorical, and the target's values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

TASKS = ("classification", "regression")


def read_table(path: Path, target: str, numeric: list[str] | None, categorical: list[str] | None,
               exclude: list[str], task: str) -> tuple[pd.DataFrame, list[str], list[str]]:
    """(the table, its numeric columns, its categorical columns), each checked against the file's header.

    A list left null is inferred from what pandas reads: numbers are numeric, anything else (text,
    true/false) categorical. Categories are strings, numbers floats, a missing value NaN; so are the
    rows the exported model is given (raw_rows_model.raw_frame).
    """
    where = f"data.path={path}"
    try:
        header = list(pd.read_csv(path, nrows=0).columns)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{where}: the file is empty; expected a CSV with a header row naming its columns") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{where}: not a readable CSV file ({first})") from None
    columns = ", ".join(map(str, header))
    if target not in header:
        raise ValueError(f"data.target={target}: {path} has no such column; its columns are: {columns}")
    for key, names in (("data.numeric", numeric), ("data.categorical", categorical), ("data.exclude", exclude)):
        unknown = [name for name in names or [] if name not in header]
        if unknown:
            raise ValueError(f"{key}: {path} has no column {', '.join(map(repr, unknown))}; its columns are: {columns}")
        if target in (names or []):
            raise ValueError(f"{key} names the target column {target!r}: the target is predicted, not read")
    both = sorted(set(numeric or []) & set(categorical or []))
    if both:
        raise ValueError(f"data.numeric and data.categorical both name {', '.join(map(repr, both))}: "
                         "a column is one or the other")
    as_text = {name: str for name in categorical or []}
    if task == "classification":
        as_text[target] = str   # class names as written: 1 and 01 are not made the same class, nor 1 a float
    try:
        table = pd.read_csv(path, dtype=as_text)
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ValueError(f"{where}: not a readable CSV file ({str(e).strip().splitlines()[0]})") from None
    left = [name for name in header if name != target and name not in exclude]
    if numeric is None:
        numeric = [name for name in left if name not in (categorical or []) and _is_numeric(table[name])]
    if categorical is None:
        categorical = [name for name in left if name not in numeric and not _is_numeric(table[name])]
    for name in numeric:
        if not _is_numeric(table[name]):
            example = table[name].dropna().loc[lambda c: pd.to_numeric(c, errors="coerce").isna()].iloc[0]
            raise ValueError(f"data.numeric: column {name!r} of {path} holds text ({example!r}); "
                             f"list it in data.categorical, or leave both lists null to infer them")
    if not numeric and not categorical:
        raise ValueError(f"{where}: no feature columns left besides the target {target!r}; its columns are: {columns}")
    for name in numeric:
        table[name] = table[name].astype(float)
    for name in categorical:
        column = table[name].astype(object)
        table[name] = column.astype(str).where(column.notna(), np.nan)
    return table, numeric, categorical


def class_names(values: pd.Series) -> list[str]:
    """The distinct classes, in numeric order when every one is a number (2 before 10), else sorted as text."""
    names = sorted(set(values))
    try:
        return sorted(names, key=float)
    except ValueError:
        return names


def regression_targets(values: pd.Series, target: str) -> np.ndarray:
    """The target as floats (NaN where missing); text in it is an error."""
    numbers = pd.to_numeric(values, errors="coerce")
    text = values[numbers.isna() & values.notna()]
    if len(text):
        raise ValueError(f"data.target={target}: data.task=regression needs numbers, but line {text.index[0] + 2} "
                         f"holds {text.iloc[0]!r}; use data.task=classification for classes")
    return numbers.to_numpy(dtype=np.float64)


def _is_numeric(column: pd.Series) -> bool:
    # True/False columns are categories: scaling them as 0/1 numbers would work, but one-hot keeps them readable.
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
