"""Find sweeplab's runs in MLflow: a run by id, a sweep's parent and best trial, a run's config."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf

from sweeplab.errors import ConfigError
from sweeplab.tracking.store import no_such_run


def get_run(client: MlflowClient, run_id: str) -> Run:
    try:
        return client.get_run(run_id)
    except MlflowException:
        raise no_such_run(run_id, client.tracking_uri) from None


def is_sweep(run: Run) -> bool:
    return run.data.tags.get("sweeplab.role") == "sweep"


def training_run(client: MlflowClient, run_id: str) -> Run:
    """The run itself, or for a sweep's parent run, its best trial; refuses runs sweeplab did not write."""
    run = get_run(client, run_id)
    if is_sweep(run):
        best = run.data.tags.get("sweeplab.best_run_id")
        if not best:
            raise ConfigError(f"sweep run {run_id} has no best trial yet; finish the sweep first")
        run = get_run(client, best)
    if "sweeplab.version" not in run.data.tags:
        raise ConfigError(f"run {run.info.run_id} was not recorded by sweeplab train or sweep "
                          "(no sweeplab tags); give a sweeplab run id")
    return run


def model_run(client: MlflowClient, run: Run) -> Run:
    """The run that holds the trained model: the run itself, or for a cross-validation run (one model per
    fold) the fold whose model is best by the monitored metric."""
    best_fold = run.data.tags.get("sweeplab.cv_best_fold_run_id")
    return get_run(client, best_fold) if best_fold else run


def run_config(client: MlflowClient, run: Run) -> DictConfig:
    """The resolved config the run was trained with (its config.yaml artifact)."""
    with tempfile.TemporaryDirectory() as folder, no_progress_bar():
        try:
            path = client.download_artifacts(run.info.run_id, "config.yaml", folder)
        except (MlflowException, OSError):
            raise ConfigError(f"run {run.info.run_id} has no config.yaml artifact to rebuild it from") from None
        return OmegaConf.load(Path(path))


@contextmanager
def no_progress_bar():
    """MLflow draws a download progress bar even for one small file."""
    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
