"""What a run writes to MLflow, in one place: rank 0 gets a RunRecorder, every other rank a NoRecorder.

run_experiment calls the same methods on every rank; only rank 0's do anything, so the training
code has one path and I/O sits behind this one choice (as nanoGPT's `master_process` flag).
"""

from __future__ import annotations

import mlflow
import pytorch_lightning as pl
from mlflow import MlflowClient
from omegaconf import DictConfig

from sweeplab.config import to_yaml
from sweeplab.tracking import model_export, params, store
from sweeplab.tracking.metric_logger import MlflowBatchLogger
from sweeplab.tracking.secrets import hide_passwords

MAX_TAG_LENGTH = 5000


class NoRecorder:
    """Ranks > 0: they train and test, and record nothing."""

    run_id = ""
    loggers: list = []
    last: dict[str, float] = {}

    def set_tags(self, tags: dict[str, str]) -> None:
        pass

    def log_outputs(self, cfg: DictConfig, best_checkpoint: str | None, module: pl.LightningModule,
                    datamodule: pl.LightningDataModule) -> None:
        pass

    def close(self, status: str, error: str | None = None, details: str | None = None) -> None:
        pass


class RunRecorder(NoRecorder):
    """Rank 0: the MLflow run, opened with its inputs and closed with its outputs and status."""

    def __init__(self, client: MlflowClient, run_id: str):
        self.client = client
        self.run_id = run_id
        self.logger = MlflowBatchLogger(client, run_id)
        self.loggers = [self.logger]

    @classmethod
    def open(cls, cfg: DictConfig, uri: str, *, resolved: dict, overrides, patch: str, tags: dict[str, str],
             parent_run_id: str | None, run_name: str | None) -> RunRecorder:
        """Start the run and log its params (every leaf of the resolved config), config, overrides and patch."""
        client = store.open_client(uri)
        mlflow.set_tracking_uri(uri)
        experiment_id = store.experiment_id(client, cfg.tracking.experiment, cfg.tracking.artifact_location)
        interval = cfg.tracking.get("system_metrics_interval")
        if interval:
            mlflow.set_system_metrics_sampling_interval(interval)
        run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name or cfg.tracking.run_name,
                               parent_run_id=parent_run_id, tags=tags, log_system_metrics=bool(interval))
        recorder = cls(client, run.info.run_id)
        try:
            params.log_params(client, run.info.run_id, params.flatten(resolved))
            mlflow.log_text(hide_passwords(to_yaml(cfg)), "config.yaml")
            mlflow.log_text(hide_passwords("".join(f"{o}\n" for o in overrides)), "overrides.txt")
            if patch:
                mlflow.log_text(patch, "git.patch")
        except BaseException:
            mlflow.end_run("FAILED")
            raise
        return recorder

    @property
    def last(self) -> dict[str, float]:
        return dict(self.logger.last)

    def set_tags(self, tags: dict[str, str]) -> None:
        mlflow.set_tags(tags)

    def log_outputs(self, cfg: DictConfig, best_checkpoint: str | None, module: pl.LightningModule,
                    datamodule: pl.LightningDataModule) -> None:
        self.logger.flush()
        if cfg.tracking.log_checkpoint and best_checkpoint:
            mlflow.log_artifact(best_checkpoint, "checkpoints")
        if cfg.tracking.log_model:
            model_files = getattr(datamodule, "model_files", None)
            model_export.log_model(module.net, datamodule.example_input(), model_files() if model_files else None)

    def close(self, status: str, error: str | None = None, details: str | None = None) -> None:
        try:
            self.logger.flush()
            if error:
                mlflow.set_tag("sweeplab.error", hide_passwords(error)[:MAX_TAG_LENGTH])
            if details:
                mlflow.log_text(hide_passwords(details), "error.txt")
        finally:
            mlflow.end_run(status)
