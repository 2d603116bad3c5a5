"""Log a trained network as an MLflow PyTorch model that mlflow.pyfunc loads without our code."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import mlflow
import torch
from mlflow.models import infer_signature

from sweeplab.tracking.provenance import versions


def log_model(net: torch.nn.Module, example: torch.Tensor, files: dict[str, str] | None = None) -> None:
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
                                 # MLflow would reload the saved model and predict on the example
                                 # (≈0.1 s a run) only to log a warning if that fails; our tests
                                 # load and predict with the logged model instead.
                                 validate_serving_input=False)
