"""Log a pretrained-text run's model: an MLflow pyfunc taking raw strings, the checkpoint's tokenizer packed with it."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import torch
from mlflow.models import ModelSignature, infer_signature
from mlflow.types.schema import ColSpec, Schema

from sweeplab import extras
from sweeplab.tracking.lookup import no_progress_bar
from sweeplab.tracking.raw_rows_export import PROBABILITY_PREFIX, pinned_requirements, quiet_logger

# Run by MLflow when the model loads (models-from-code), never imported here: it registers the model as it runs.
MODEL_CODE = Path(__file__).with_name("raw_text_model.py")
# What loading the model needs (raw_text_model.py imports these and nothing of sweeplab).
REQUIREMENTS = ("mlflow", "torch", "transformers", "tokenizers", "pandas", "numpy")


def log_raw_text_model(net: torch.nn.Module, datamodule: extras.RawTexts, preprocessing: extras.TextPreprocessing,
                       example_rows: int, step: int = 0) -> None:
    """`runs:/<RUN_ID>/model`, loaded with `mlflow.pyfunc.load_model`, predicts from raw strings
    (raw_text_model.py); `mlflow models serve` answers {"inputs": ["a fine film", ...]}."""
    texts = datamodule.raw_texts(example_rows)
    net = net.eval().cpu()
    with tempfile.TemporaryDirectory(prefix="sweeplab-model-") as folder, no_progress_bar(), quiet_logger("mlflow.pyfunc"):
        tokenizer = Path(folder) / "tokenizer"
        preprocessing.save_tokenizer(tokenizer)
        ids = _ids(tokenizer, texts, preprocessing.max_len)
        with torch.no_grad():
            outputs = net(torch.from_numpy(ids)).numpy()
        network = Path(folder) / "network"
        mlflow.pytorch.save_model(net, str(network), serialization_format="pt2", input_example=ids,
                                  signature=infer_signature(ids, outputs), pip_requirements=pinned_requirements(REQUIREMENTS))
        text = Path(folder) / "text.json"
        text.write_text(json.dumps({
            "max_len": preprocessing.max_len, "pad_id": preprocessing.pad_id, "classes": preprocessing.classes,
            "probability_columns": _probability_columns(preprocessing.classes),
        }, indent=2), encoding="utf-8")
        mlflow.pyfunc.log_model(name="model", python_model=str(MODEL_CODE),
                                artifacts={"network": str(network), "tokenizer": str(tokenizer), "text": str(text)},
                                signature=_signature(preprocessing.classes), input_example=texts,
                                pip_requirements=pinned_requirements(REQUIREMENTS),
                                step=step)   # the run's metrics at this step become the model's


def _ids(tokenizer_folder: Path, texts: list[str], max_len: int) -> np.ndarray:
    """The example texts as the served model will tokenize them (from the saved files, padded to max_len)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_folder), local_files_only=True)
    return np.asarray(tokenizer(texts, truncation=True, max_length=max_len, padding="max_length",
                                return_attention_mask=False)["input_ids"], dtype=np.int64)


def _signature(classes: list[str]) -> ModelSignature:
    # One unnamed string column: MLflow then takes a plain list of strings (and {"inputs": [...]} when served).
    return ModelSignature(Schema([ColSpec("string")]),
                          Schema([ColSpec("string", "label"), *[ColSpec("double", c) for c in _probability_columns(classes)]]))


def _probability_columns(classes: list[str]) -> list[str]:
    return [PROBABILITY_PREFIX + name for name in classes]
