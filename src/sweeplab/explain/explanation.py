"""Explain a network on a data module's first test examples and log the files under `explanations/` of a run."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import pytorch_lightning as pl
import torch

from sweeplab.explain import tokens
from sweeplab.explain.attribute import METHODS, Attributions, attribute
from sweeplab.explain.examples import test_examples, training_baselines
from sweeplab.explain.features_plot import features_figure
from sweeplab.explain.image_grid import image_figure
from sweeplab.explain.kinds import Kind, kind_of
from sweeplab.explain.labels import labels_of
from sweeplab.explain.network import network_of
from sweeplab.explain.protocols import ClassNames, FeatureNames
from sweeplab.explain.settings import FOLDER, TAG
from sweeplab.explain.steps_plot import steps_figure
from sweeplab.explain.tables import mean_abs, write
from sweeplab.explain.text_page import text_page


def explain_and_log(client, run_id: str, module: torch.nn.Module, datamodule: pl.LightningDataModule,
                    seed: int, examples: int, title: str) -> list[str]:
    """Attributions of the module's network (see network.network_of) for the first `examples` test
    examples, on the CPU; returns the artifact paths logged to run `run_id` (on a finished run too)."""
    # A copy on the CPU: the trained module may sit on a GPU, and attributing writes gradients into it.
    net = copy.deepcopy(network_of(module)).cpu().eval()
    chosen = test_examples(datamodule, examples)
    training = None if kind_of(chosen.inputs) is Kind.TOKENS else training_baselines(datamodule, seed)
    attributions = attribute(net, chosen, training, seed)
    with tempfile.TemporaryDirectory(prefix="sweeplab-explain-") as folder:
        files = write_files(attributions, net, datamodule, Path(folder), title, run_id)
        for path in files:
            client.log_artifact(run_id, str(path), FOLDER)
    client.set_tag(run_id, TAG, f"{len(chosen.inputs)} test examples: {', '.join(METHODS)}; "
                                f"attributions of {attributions.target_text}")
    return [f"{FOLDER}/{path.name}" for path in files]


def write_files(attributions: Attributions, net: torch.nn.Module, datamodule, folder: Path, title: str,
                run_id: str) -> list[Path]:
    """The modality's picture (a PNG, or an HTML page for text) and the per-feature tables."""
    names = list(datamodule.classes) if isinstance(datamodule, ClassNames) and datamodule.classes else None
    labels = labels_of(attributions, names)
    kind = attributions.kind
    words = None
    if kind is Kind.TOKENS:
        pad = tokens.pad_id(tokens.embedding_of(net))
        words = tokens.words_of(attributions.examples.inputs, pad, datamodule)
    columns = list(datamodule.feature_names) if isinstance(datamodule, FeatureNames) else None
    table = mean_abs(attributions, words, columns)
    heading = f"{title}: attributions of {attributions.target_text}"
    if kind is Kind.TOKENS:
        picture = folder / "words.html"
        picture.write_text(text_page(attributions, words, labels, table, heading), encoding="utf-8")
    else:
        figure = {Kind.IMAGES: lambda: image_figure(attributions, labels, heading),
                  Kind.STEPS: lambda: steps_figure(attributions, table, heading),
                  Kind.FEATURES: lambda: features_figure(table, heading)}[kind]()
        picture = folder / f"{kind.value}.png"
        figure.savefig(picture, dpi=110)
    about = {"run_id": run_id, "examples": len(attributions.examples.inputs),
             "examples_are": "the first examples of the test split, in order",
             "labels": [{"true": label.true, "predicted": label.predicted} for label in labels]}
    return [picture, *write(table, attributions, folder, about)]
