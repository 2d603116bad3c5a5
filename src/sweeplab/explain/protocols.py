"""What explanations use from a data module when it offers it (structural protocols, like sweeplab.extras)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from sweeplab.errors import ConfigError

if TYPE_CHECKING:
    import torch


class NotExplainable(ConfigError):
    """The run's model or data cannot be explained (one line, exit 2)."""


@runtime_checkable
class DecodesTokens(Protocol):
    """A text data module's words for rows of token ids (sweeplab.data.text.TextDataModule.decode)."""

    def decode(self, ids: torch.Tensor) -> list[list[str]]: ...


@runtime_checkable
class ClassNames(Protocol):
    """A data module's class names, in label order (e.g. a text data module's `classes`)."""

    classes: list[str]


@runtime_checkable
class FeatureNames(Protocol):
    """A data module's names of the columns of 2-D feature inputs (tabular data)."""

    feature_names: list[str]
