"""Flattening the resolved config into MLflow params."""

from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

from sweeplab.tracking.params import flatten


def test_flatten_dotted_keys_lists_and_limits():
    flat = flatten({"a": {"b": 1, "c": [2, 3], "d": None, "e": {}}, "s": "x" * 10_000, "f": 0.5})
    assert flat == {"a.b": "1", "a.c": "[2, 3]", "a.d": "null", "a.e": "{}",
                    "s": "x" * MAX_PARAM_VAL_LENGTH, "f": "0.5"}
