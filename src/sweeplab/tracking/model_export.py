"""Log a trained network as an MLflow PyTorch model that mlflow.pyfunc loads without our code."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import mlflow
import pytorch_lightning as pl
import torch
from mlflow.models import infer_signature
from pytorch_lightning.utilities.model_helpers import is_overridden

from sweeplab import extras
from sweeplab.tracking import raw_rows_export, raw_text_export
from sweeplab.tracking.provenance import versions

EXAMPLE_ROWS = 2   # inputs stored as the model's input example


def log_module(module: pl.LightningModule, datamodule: pl.LightningDataModule, step: int = 0) -> str | None:
    """Log a run's model: the module's `net` when it has one (extras.HasNet), else the LightningModule
    itself; the input example from the data module's `example_input` (extras.ExampleInput), else the
    first inputs of a real batch. A data module of table rows (extras.RawRows) gets a model that takes
    raw rows instead (raw_rows_export.py), one of texts read by a pretrained tokenizer (extras.RawTexts)
    a model that takes raw strings (raw_text_export.py). Returns why nothing was logged, or None."""
    net = module.net if isinstance(module, extras.HasNet) and isinstance(module.net, torch.nn.Module) else module
    if net is module and not is_overridden("forward", module):
        return f"{type(module).__qualname__} defines no forward() to export"
    if isinstance(datamodule, extras.RawRows):   # table rows: a model taking raw rows, preprocessing and all
        raw_rows_export.log_raw_rows_model(net, datamodule, EXAMPLE_ROWS, step=step)
        return None
    text = datamodule.text_preprocessing() if isinstance(datamodule, extras.RawTexts) else None
    if text is not None:   # texts read by a pretrained tokenizer: a model taking raw strings, tokenizer and all
        raw_text_export.log_raw_text_model(net, datamodule, text, EXAMPLE_ROWS, step=step)
        return None
    if isinstance(datamodule, extras.ExampleInput):
        example = datamodule.example_input(EXAMPLE_ROWS)
    else:
        example = _batch_inputs(datamodule)
        if example is None:
            return "no batch of the data module starts with a tensor of inputs"
    log_model(net, example, datamodule.model_files() if isinstance(datamodule, extras.ModelFiles) else None,
              step=step)
    return None


def _batch_inputs(datamodule: pl.LightningDataModule) -> torch.Tensor | None:
    """The first rows of the inputs (a batch, or its first item) of the first loader the data module has."""
    loaders = {"val_dataloader": datamodule.val_dataloader, "test_dataloader": datamodule.test_dataloader,
               "train_dataloader": datamodule.train_dataloader}
    for name, loader in loaders.items():
        if is_overridden(name, datamodule):
            batch = next(iter(loader()))
            inputs = batch[0] if isinstance(batch, (list, tuple)) else batch
            return inputs[:EXAMPLE_ROWS] if isinstance(inputs, torch.Tensor) else None
    return None


def log_model(net: torch.nn.Module, example: torch.Tensor, files: dict[str, str] | None = None,
              step: int = 0) -> None:
    """pt2 (torch.export) serialisation: the loader needs no sweeplab or user code on its path.

    `files` (name -> text, e.g. a text model's vocabulary) are stored with the model, under
    `extra_files/` in its folder.
    """
    net = net.eval().cpu()
    example = example.cpu()
    with torch.no_grad():
        output = net(example)
    signature = infer_signature(example.numpy(), output.numpy())
    found = versions()
    # Giving the requirements saves ≈11 s of inference per call.
    requirements = [f"{name}=={found[name]}" for name in ("torch", "mlflow") if name in found]
    with warnings.catch_warnings(), tempfile.TemporaryDirectory(prefix="sweeplab-model-") as folder:
        extra_files = []
        for name, text in (files or {}).items():
            (Path(folder) / name).write_text(text, encoding="utf-8")
            extra_files.append(str(Path(folder) / name))
        # nn.LSTM re-assigns its weight list while torch.export traces it; the exported
        # program is correct (tested), the warning only addresses nn.LSTM's authors.
        warnings.filterwarnings("ignore", message=r".*_flat_weights.*were assigned during export")
        mlflow.pytorch.log_model(net, name="model", signature=signature, input_example=example.numpy(),
                                 pip_requirements=requirements, serialization_format="pt2",
                                 extra_files=extra_files or None,
                                 step=step,   # the run's metrics at this step become the model's
                                 # MLflow would reload the saved model and predict on the example
                                 # (≈0.1 s a run) only to log a warning if that fails; our tests
                                 # load and predict with the logged model instead.
                                 validate_serving_input=False)
