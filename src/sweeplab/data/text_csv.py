"""Texts and labels from any CSV file (data.path, data.text_column, data.label_column): bring your own corpus."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sweeplab.data.text import TextDataModule


class CSVTextDataModule(TextDataModule):
    """One text and one label per row; rows with an empty text or label are dropped.

    `labels` (a list) keeps only the rows with those labels, in that class order; null keeps
    every label, sorted. Compressed files (.bz2, .gz, .zip, .xz) are read as they are.
    """

    def __init__(self, path: str, text_column: str = "text", label_column: str = "label", **kwargs):
        super().__init__(**kwargs)
        if not path:
            raise ValueError("data.path is not set: give a CSV file with a header row, "
                             "e.g. data.path=reviews.csv data.text_column=text data.label_column=label")
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise FileNotFoundError(f"data.path={path}: no such file; give a CSV file with a header row "
                                    f"naming data.text_column={text_column} and data.label_column={label_column}")
        self.text_column = text_column
        self.label_column = label_column

    def describe(self) -> str:
        return f"data.path={self.path}"

    def load_texts(self) -> tuple[list[str], list[str]]:
        try:
            # Everything as text: a label column of 0/1 must not turn into floats when a cell is empty.
            table = pd.read_csv(self.path, dtype=str, keep_default_na=False)
        except pd.errors.EmptyDataError:
            raise ValueError(f"{self.describe()}: the file is empty; expected a CSV with a header row naming "
                             f"the columns {self.text_column!r} and {self.label_column!r}") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ValueError(f"{self.describe()}: not a readable CSV file ({first})") from None
        for key, column in (("data.text_column", self.text_column), ("data.label_column", self.label_column)):
            if column not in table.columns:
                raise ValueError(f"{self.describe()} has no column {column!r} ({key}); its columns are: "
                                 f"{', '.join(map(str, table.columns))}")
        table = table[(table[self.text_column].str.strip() != "") & (table[self.label_column].str.strip() != "")]
        return table[self.text_column].tolist(), table[self.label_column].str.strip().tolist()
