"""sweeplab's optional extras: what it uses from a LightningModule or LightningDataModule when they offer it.

Nothing here is required: any LightningModule and LightningDataModule train, sweep and reproduce.
Each extra is a structural protocol (the class need not import or subclass anything of sweeplab);
the README's table "Your own Lightning code" lists them. Imports no torch: `--print-config` uses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pandas
    import torch

@runtime_checkable
class ExampleInput(Protocol):
    """A data module's real inputs for the exported model's input example and signature."""

    def example_input(self, n: int = 2) -> torch.Tensor: ...


@runtime_checkable
class ModelFiles(Protocol):
    """A data module's files stored with the exported model (name -> text, e.g. a vocabulary)."""

    def model_files(self) -> dict[str, str]: ...


@runtime_checkable
class Fingerprinted(Protocol):
    """A data module's digest of the data it serves (tag `sweeplab.data_fingerprint`), set by `setup`."""

    fingerprint: str | None


@runtime_checkable
class DrawsFigures(Protocol):
    """Figures logged after the test: a data module's get the module, a module's get the data module."""

    def figures(self, other) -> dict: ...


@runtime_checkable
class ReferenceMetrics(Protocol):
    """A data module's baseline metrics (e.g. `test/seasonal_naive_rmse`), logged beside `test/*`."""

    def reference_metrics(self) -> dict[str, float]: ...


@runtime_checkable
class HasNet(Protocol):
    """A module whose plain network `net` (one tensor in, one out) is what gets exported as the model."""

    net: torch.nn.Module


@dataclass(frozen=True)
class RowPreprocessing:
    """What turns raw table rows into the network's input, and its output back into predictions.

    `transformer` is fitted (training rows only) and needs nothing but scikit-learn to run:
    `transformer.transform(frame)` maps a pandas DataFrame of the raw `numeric` and `categorical`
    columns (NaN where a value is missing, categories as strings) to the network's input rows.
    `classes` (classification) names the network's outputs in order; None means regression, where the
    network predicts `(target - target_mean) / target_std`.
    """

    transformer: Any
    numeric: list[str]
    categorical: list[str]
    target: str
    classes: list[str] | None = None
    target_mean: float = 0.0
    target_std: float = 1.0


@runtime_checkable
class RawRows(Protocol):
    """A data module whose examples start as table rows: the exported model is then an MLflow pyfunc that
    takes a pandas DataFrame of raw rows and applies `row_preprocessing()` before the network
    (tracking/raw_rows_export.py), instead of a bare network taking tensors."""

    def raw_rows(self, n: int = 2) -> pandas.DataFrame:
        """The first `n` raw validation rows (the model's input example), feature columns only."""
        ...

    def row_preprocessing(self) -> RowPreprocessing: ...


@dataclass(frozen=True)
class TextPreprocessing:
    """What turns raw texts into the network's input: a pretrained checkpoint's tokenizer.

    `save_tokenizer(folder)` writes its files, which transformers' AutoTokenizer reads back; texts are
    truncated to `max_len` tokens and right-padded with `pad_id`; `classes` names the outputs in order.
    """

    save_tokenizer: Callable[[Any], None]
    max_len: int
    pad_id: int
    classes: list[str]


@runtime_checkable
class RawTexts(Protocol):
    """A data module whose examples start as texts: when `text_preprocessing()` gives a tokenizer, the exported
    model is an MLflow pyfunc that takes raw strings and tokenizes them itself (tracking/raw_text_export.py)."""

    def raw_texts(self, n: int = 2) -> list[str]:
        """The first `n` raw validation texts (the model's input example)."""
        ...

    def text_preprocessing(self) -> TextPreprocessing | None: ...


@runtime_checkable
class Provenance(Protocol):
    """A module's tags saying what it started from (a pretrained checkpoint's name and weights' sha256)."""

    def provenance_tags(self) -> dict[str, str]: ...
