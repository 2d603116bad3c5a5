"""Log a table-rows run's model: an MLflow pyfunc taking raw rows, its preprocessing stored beside the network."""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
from importlib import metadata
from pathlib import Path

import mlflow
import numpy as np
import torch
from mlflow.models import ModelSignature, infer_signature
from mlflow.types.schema import AnyType, ColSpec, Schema

from sweeplab import extras
from sweeplab.tracking.lookup import no_progress_bar

# Run by MLflow when the model loads (models-from-code), never imported here: it registers the model as it runs.
MODEL_CODE = Path(__file__).with_name("raw_rows_model.py")
# What loading the model needs (raw_rows_model.py imports these and nothing of sweeplab).
REQUIREMENTS = ("mlflow", "torch", "scikit-learn", "skops", "pandas", "numpy")
PROBABILITY_PREFIX = "proba_"   # classification: the output column of each class's probability


def log_raw_rows_model(net: torch.nn.Module, datamodule: extras.RawRows, example_rows: int, step: int = 0) -> None:
    """`runs:/<RUN_ID>/model`, loaded with `mlflow.pyfunc.load_model`, predicts from a DataFrame of raw
    rows (raw_rows_model.py). The network inside is serialised as every other model is (pt2)."""
    import skops.io

    preprocessing = datamodule.row_preprocessing()
    example = datamodule.raw_rows(example_rows)
    net = net.eval().cpu()
    # The data module's raw rows are typed as the transformer was fitted on them.
    inputs = np.asarray(preprocessing.transformer.transform(example), dtype=np.float32)
    with torch.no_grad():
        outputs = net(torch.from_numpy(inputs)).numpy()
    requirements = pinned_requirements()
    # MLflow loads the logged model and predicts on the input example (a check: it warns if that fails),
    # announcing it and downloading the artifacts with a progress bar each.
    with (tempfile.TemporaryDirectory(prefix="sweeplab-model-") as folder, no_progress_bar(),
          quiet_logger("mlflow.pyfunc")):
        network = Path(folder) / "network"
        mlflow.pytorch.save_model(net, str(network), serialization_format="pt2", input_example=inputs,
                                  signature=infer_signature(inputs, outputs), pip_requirements=requirements)
        preprocessor = Path(folder) / "preprocessor.skops"
        skops.io.dump(preprocessing.transformer, preprocessor)
        rows = Path(folder) / "rows.json"
        rows.write_text(json.dumps({
            "numeric": preprocessing.numeric, "categorical": preprocessing.categorical,
            "target": preprocessing.target, "classes": preprocessing.classes,
            "probability_columns": _probability_columns(preprocessing),
            "target_mean": preprocessing.target_mean, "target_std": preprocessing.target_std,
            # The types skops does not trust by default that this transformer holds (numpy dtypes).
            "trusted_types": skops.io.get_untrusted_types(file=preprocessor),
        }, indent=2), encoding="utf-8")
        mlflow.pyfunc.log_model(name="model", python_model=str(MODEL_CODE),
                                artifacts={"network": str(network), "preprocessor": str(preprocessor),
                                           "rows": str(rows)},
                                signature=_signature(preprocessing), input_example=example,
                                pip_requirements=requirements,
                                step=step)   # the run's metrics at this step become the model's


@contextlib.contextmanager
def quiet_logger(logger: str):
    """The logger's INFO lines left out while inside."""
    found = logging.getLogger(logger)
    before = found.level
    found.setLevel(logging.WARNING)
    try:
        yield
    finally:
        found.setLevel(before)


def _signature(preprocessing: extras.RowPreprocessing) -> ModelSignature:
    """Raw columns of any type, which the model converts itself (raw_rows_model.raw_frame): MLflow's typed
    columns would refuse what a user's own CSV reader gives, such as whole numbers in a numeric column,
    numbers in a category column, or a category column whose values are all missing. Outputs as
    raw_rows_model.RawRowsModel.predict returns them."""
    inputs = Schema([ColSpec(AnyType(), name) for name in [*preprocessing.numeric, *preprocessing.categorical]])
    if preprocessing.classes is None:
        return ModelSignature(inputs, Schema([ColSpec("double", preprocessing.target)]))
    return ModelSignature(inputs, Schema([ColSpec("string", preprocessing.target),
                                          *[ColSpec("double", name) for name in _probability_columns(preprocessing)]]))


def _probability_columns(preprocessing: extras.RowPreprocessing) -> list[str] | None:
    return None if preprocessing.classes is None else [PROBABILITY_PREFIX + name for name in preprocessing.classes]


def pinned_requirements(names=REQUIREMENTS) -> list[str]:
    """`name==version` of each installed package of `names`: giving them saves MLflow's inference (seconds a model)."""
    found = []
    for name in names:
        try:
            found.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return found
