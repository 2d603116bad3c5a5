"""Register a run's model (or a sweep's best trial's) in the MLflow Model Registry as NAME@champion."""

from __future__ import annotations

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from sweeplab.errors import ConfigError
from sweeplab.tracking import lookup

ALIAS = "champion"


def register(client: MlflowClient, run_id: str, name: str) -> str:
    """Register and alias; returns "NAME/VERSION". A sweep's parent run gets a link to it."""
    run = lookup.training_run(client, run_id)
    model_run = lookup.model_run(client, run)   # a cross-validation run's: its best fold's
    mlflow.set_tracking_uri(client.tracking_uri)
    # MLflow 3 keeps a run's model as a logged model (models:/m-...); registering it by its runs:/ path
    # works only through a fallback that logs a warning.
    outputs = model_run.outputs.model_outputs if model_run.outputs else []
    source = f"models:/{outputs[-1].model_id}" if outputs else f"runs:/{model_run.info.run_id}/model"
    try:
        version = mlflow.register_model(source, name)
    except MlflowException as e:
        raise ConfigError(f"run {model_run.info.run_id} has no model to register ({str(e).splitlines()[0]}); "
                          "train with tracking.log_model=true") from None
    client.set_registered_model_alias(name, ALIAS, version.version)
    link = f"{name}/{version.version}"
    for tagged in dict.fromkeys((model_run.info.run_id, run.info.run_id, run_id)):
        client.set_tag(tagged, "sweeplab.registered_model", link)
    return link
