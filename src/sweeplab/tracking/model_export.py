"""Log a trained network as an MLflow PyTorch model that mlflow.pyfunc loads without our code."""

from __future__ import annotations

import warnings

import mlflow
import torch
from mlflow.models import infer_signature

from sweeplab.tracking.provenance import versions


def log_model(net: torch.nn.Module, example: torch.Tensor) -> None:
    """pt2 (torch.export) serialisation: the loader needs no sweeplab or user code on its path."""
    net = net.eval().cpu()
    example = example.cpu()
    with torch.no_grad():
        output = net(example)
    signature = infer_signature(example.numpy(), output.numpy())
    found = versions()
    # Giving the requirements saves ≈11 s of inference per call.
    requirements = [f"{name}=={found[name]}" for name in ("torch", "mlflow") if name in found]
    with warnings.catch_warnings():
        # nn.LSTM re-assigns its weight list while torch.export traces it; the exported
        # program is correct (tested), the warning only addresses nn.LSTM's authors.
        warnings.filterwarnings("ignore", message=r".*_flat_weights.*were assigned during export")
        mlflow.pytorch.log_model(net, name="model", signature=signature, input_example=example.numpy(),
                                 pip_requirements=requirements, serialization_format="pt2",
                                 # MLflow would reload the saved model and predict on the example
                                 # (≈0.1 s a run) only to log a warning if that fails; our tests
                                 # load and predict with the logged model instead.
                                 validate_serving_input=False)
