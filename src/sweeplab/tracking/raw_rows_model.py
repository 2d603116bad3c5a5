"""The exported model of a table-rows run, as MLflow models-from-code: raw rows in, predictions out.

MLflow copies this file into the model and runs it on `mlflow.pyfunc.load_model`, so it imports
nothing of sweeplab: the loader needs only mlflow, torch, scikit-learn, skops and pandas. Its
artifacts, written by raw_rows_export.py:

    network       the trained network, an MLflow PyTorch model (pt2)
    preprocessor  the fitted scikit-learn transformer (skops format, no pickle)
    rows.json     the raw columns by kind, the target, the class names (and their probability columns)
                  or the target's scale
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel

class RawRowsModel(PythonModel):
    """predict(DataFrame of raw rows) -> DataFrame: column `<target>` (the class name, or the value in
    the target's own units) and, for classification, a probability column for every class (`proba_<class>`)."""

    def load_context(self, context) -> None:
        import skops.io

        self.rows = json.loads(Path(context.artifacts["rows"]).read_text(encoding="utf-8"))
        self.transformer = skops.io.load(context.artifacts["preprocessor"], trusted=self.rows["trusted_types"])
        self.network = mlflow.pytorch.load_model(context.artifacts["network"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        frame = raw_frame(pd.DataFrame(model_input), self.rows["numeric"], self.rows["categorical"])
        inputs = torch.as_tensor(np.asarray(self.transformer.transform(frame), dtype=np.float32))
        with torch.no_grad():
            outputs = self.network(inputs).numpy().astype(np.float64)
        target, classes = self.rows["target"], self.rows["classes"]
        if classes is None:
            return pd.DataFrame({target: outputs[:, 0] * self.rows["target_std"] + self.rows["target_mean"]})
        shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        probabilities = shifted / shifted.sum(axis=1, keepdims=True)
        predicted = pd.DataFrame({target: np.asarray(classes, dtype=object)[outputs.argmax(axis=1)]})
        return pd.concat([predicted, pd.DataFrame(probabilities, columns=self.rows["probability_columns"])], axis=1)


def raw_frame(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """The columns the transformer was fitted on, typed as in training: numbers as floats, categories as
    strings (`1` and `"1"` are the same category), every kind of missing value (None, NaN, pd.NA) as NaN,
    which the transformer's imputers fill. Other columns are left out; a column of the model's missing
    from the rows is an error (a misspelt name must not pass as a column of missing values)."""
    absent = [name for name in [*numeric, *categorical] if name not in frame.columns]
    if absent:
        raise ValueError(f"the rows have no column {', '.join(map(repr, absent))}; the model reads "
                         f"{', '.join(map(repr, [*numeric, *categorical]))}")
    typed = {}
    for name in numeric:
        column = frame[name].astype(object)
        try:
            typed[name] = pd.to_numeric(column.where(column.notna(), np.nan)).astype(float)
        except (ValueError, TypeError) as e:
            raise ValueError(f"column {name!r} must hold numbers: {e}") from None
    for name in categorical:
        column = frame[name].astype(object)
        typed[name] = column.astype(str).where(column.notna(), np.nan)
    return pd.DataFrame(typed, index=frame.index)


set_model(RawRowsModel())
