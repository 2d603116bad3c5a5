"""Every leaf of the resolved config as a dotted MLflow param, within MLflow's limits."""

from __future__ import annotations

import json

from mlflow.entities import Param
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH, MAX_PARAMS_TAGS_PER_BATCH

from sweeplab.secrets import hide_passwords


def flatten(tree: dict, prefix: str = "") -> dict[str, str]:
    """{"a": {"b": 1, "c": [2, 3]}} -> {"a.b": "1", "a.c": "[2, 3]"}; lists stay one value."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            text = value if isinstance(value, str) else json.dumps(value)
            flat[name] = text[:MAX_PARAM_VAL_LENGTH]
    return flat


def log_params(client, run_id: str, params: dict[str, str]) -> None:
    """Log `params` in batches; the password of any URL in a value (`tracking.uri`, ...) is hidden."""
    items = [Param(k, hide_passwords(v)) for k, v in sorted(params.items())]
    for start in range(0, len(items), MAX_PARAMS_TAGS_PER_BATCH):
        client.log_batch(run_id, params=items[start:start + MAX_PARAMS_TAGS_PER_BATCH], synchronous=True)
