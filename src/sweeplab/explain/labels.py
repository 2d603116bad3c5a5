"""Each explained example's true and predicted label, in words, for the figures and the page."""

from __future__ import annotations

from dataclasses import dataclass

from sweeplab.explain.attribute import Attributions


@dataclass
class Label:
    true: str
    predicted: str
    right: bool | None     # None for regression: there is no right or wrong, only an error


def labels_of(attributions: Attributions, class_names: list[str] | None = None) -> list[Label]:
    labels, outputs = attributions.examples.labels, attributions.outputs
    if attributions.classifier:
        def name(index: int) -> str:
            return class_names[index] if class_names and 0 <= index < len(class_names) else str(index)
        return [Label(name(int(y)), name(int(p)), int(y) == int(p)) for y, p in zip(labels, outputs.argmax(1))]
    first = outputs if outputs.ndim == 1 else outputs[:, 0]
    truth = labels.reshape(len(labels), -1)[:, 0]
    return [Label(f"{float(y):.3g}", f"{float(p):.3g}", None) for y, p in zip(truth, first)]
