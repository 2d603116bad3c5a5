"""Shared test helpers: run the installed `sweeplab` command in a subprocess, read MLflow back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SWEEPLAB = str(Path(sys.executable).parent / "sweeplab")
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def run_cli(*args: str, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return subprocess.run([SWEEPLAB, *args], cwd=cwd, env={**clean, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def store_uri(directory: Path) -> str:
    return f"sqlite:///{directory / 'mlruns' / 'mlflow.db'}"


def runs_in(directory: Path, experiment: str):
    """All runs of `experiment` in the default store under `directory` (empty when there is none)."""
    from mlflow import MlflowClient

    if not (directory / "mlruns" / "mlflow.db").exists():
        return []
    client = MlflowClient(store_uri(directory))
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id]) if found else []


@pytest.fixture(scope="session")
def fashion_available() -> bool:
    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    return True
