"""The exported model of a pretrained-text run, as MLflow models-from-code: raw strings in, class probabilities out.

MLflow copies this file into the model and runs it on `mlflow.pyfunc.load_model`, so it imports nothing of
sweeplab: loading needs only mlflow, torch, transformers and pandas. Its artifacts, written by raw_text_export.py:

    network    the trained network (token ids -> logits), an MLflow PyTorch model (pt2)
    tokenizer  the checkpoint's tokenizer files (transformers.AutoTokenizer reads them, offline)
    text.json  max_len, pad_id, the class names and their probability columns
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel


class RawTextModel(PythonModel):
    """predict(strings, or a DataFrame whose first column holds them) -> DataFrame: `label` (the predicted
    class's name) and `proba_<class>` for every class."""

    def load_context(self, context) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")   # everything it reads lies in the model's folder
        from transformers import AutoTokenizer

        self.text = json.loads(Path(context.artifacts["text"]).read_text(encoding="utf-8"))
        self.tokenizer = AutoTokenizer.from_pretrained(context.artifacts["tokenizer"], local_files_only=True)
        self.network = mlflow.pytorch.load_model(context.artifacts["network"])

    def predict(self, context, model_input, params=None) -> pd.DataFrame:
        texts = texts_of(model_input)
        # Padded to max_len: the network was exported for inputs of that width.
        ids = self.tokenizer(texts, truncation=True, max_length=self.text["max_len"], padding="max_length",
                             return_attention_mask=False, return_tensors="np")["input_ids"]
        with torch.no_grad():
            logits = self.network(torch.as_tensor(ids, dtype=torch.int64)).numpy().astype(np.float64)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities = shifted / shifted.sum(axis=1, keepdims=True)
        labels = pd.DataFrame({"label": np.asarray(self.text["classes"], dtype=object)[logits.argmax(axis=1)]})
        return pd.concat([labels, pd.DataFrame(probabilities, columns=self.text["probability_columns"])], axis=1)


def texts_of(model_input) -> list[str]:
    """The strings of a list, a Series or a one-column DataFrame (MLflow hands a list over as a DataFrame)."""
    if isinstance(model_input, pd.DataFrame):
        model_input = model_input.iloc[:, 0]
    texts = list(model_input.tolist() if isinstance(model_input, (pd.Series, np.ndarray)) else model_input)
    wrong = [t for t in texts if not isinstance(t, str)]
    if wrong:
        raise ValueError(f"the model reads strings; got {type(wrong[0]).__name__} {wrong[0]!r}")
    return texts


set_model(RawTextModel())
