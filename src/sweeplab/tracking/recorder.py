"""What a run writes to MLflow, in one place: rank 0 gets a RunRecorder, every other rank a NoRecorder.

run_experiment calls the same methods on every rank; only rank 0's do anything, so the training
code has one path and I/O sits behind this one choice (as nanoGPT's `master_process` flag).
"""

from __future__ import annotations

import math
import time
from typing import Callable

import mlflow
import pytorch_lightning as pl
from mlflow import MlflowClient
from mlflow.entities import Metric
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers.logger import DummyLogger

from sweeplab.secrets import hide_passwords
from sweeplab.tracking import model_export, params, store
from sweeplab.tracking.metric_logger import MlflowBatchLogger

MAX_TAG_LENGTH = 5000
# What a caller runs on rank 0 once the run's outputs are logged: (client, run_id, cfg, module, datamodule).
# `train` and `reproduce` pass explain's explain_at_end (tracking.log_explanations); tracking imports no explain.
AtEnd = Callable[[MlflowClient, str, DictConfig, pl.LightningModule, pl.LightningDataModule], None]


class NoRecorder:
    """Ranks > 0: they train and test, and record nothing."""

    run_id = ""
    # A logger that writes nothing: callbacks that refuse a Trainer without one (LearningRateMonitor,
    # from the callbacks group) run on every rank, as rank 0's do.
    loggers: list = [DummyLogger()]
    last: dict[str, float] = {}

    def set_tags(self, tags: dict[str, str]) -> None:
        pass

    def log_params(self, values: dict[str, str]) -> None:
        pass

    def at_best_epoch(self, metric: str, mode: str) -> dict[str, float]:
        return {}

    def log_outputs(self, cfg: DictConfig, best_checkpoint: str | None, module: pl.LightningModule,
                    datamodule: pl.LightningDataModule) -> None:
        pass

    def mark_stopped(self, state: str) -> None:
        pass

    def close(self, status: str, error: str | None = None, details: str | None = None) -> None:
        pass


class RunRecorder(NoRecorder):
    """Rank 0: the MLflow run, opened with its inputs and closed with its outputs and status."""

    def __init__(self, client: MlflowClient, run_id: str, at_end: AtEnd | None = None):
        self.client = client
        self.run_id = run_id
        self.at_end = at_end
        self.logger = MlflowBatchLogger(client, run_id)
        self.loggers = [self.logger]

    @classmethod
    def open(cls, cfg: DictConfig, uri: str, *, resolved: dict, overrides, patch: str, tags: dict[str, str],
             parent_run_id: str | None, run_name: str | None, at_end: AtEnd | None = None) -> RunRecorder:
        """Start the run and log its params (every leaf of the resolved config), config, overrides and patch."""
        client = store.open_client(uri)
        mlflow.set_tracking_uri(uri)
        experiment_id = store.experiment_id(client, cfg.tracking.experiment, cfg.tracking.artifact_location)
        interval = cfg.tracking.get("system_metrics_interval")
        if interval:
            mlflow.set_system_metrics_sampling_interval(interval)
        # Without a name MLflow draws a random one, from Python's generator that the run's seed has just
        # reset: every run would be called the same.
        run_name = (run_name or cfg.tracking.run_name
                    or f"{cfg.tracking.experiment}-{time.strftime('%Y%m%d-%H%M%S')}")
        # A fold's run starts while its cross-validation run is active: MLflow nests it only when told.
        run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name, nested=mlflow.active_run() is not None,
                               parent_run_id=parent_run_id, tags=tags, log_system_metrics=bool(interval))
        recorder = cls(client, run.info.run_id, at_end)
        recorder.run_name = run.info.run_name
        try:
            params.log_params(client, run.info.run_id, params.flatten(resolved))
            # The resolved config, as config.to_yaml (and `--print-config`) shows it.
            mlflow.log_text(hide_passwords(OmegaConf.to_yaml(cfg, resolve=True)), "config.yaml")
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

    def log_params(self, values: dict[str, str]) -> None:
        params.log_params(self.client, self.run_id, values)

    def log_summary(self, metrics: dict[str, float]) -> None:
        """Figures computed after training (a cross-validation's cv/ means), at step 0."""
        self.logger.log_metrics(metrics, step=0)
        self.logger.flush()

    def at_best_epoch(self, metric: str, mode: str) -> dict[str, float]:
        """Every per-epoch metric's value at the epoch whose checkpoint was kept ({} when `metric` was never logged)."""
        if not any(m.key == metric for m in self.logger.history):
            return {}
        epoch = self._best_epoch(metric, mode)
        return {m.key: m.value for m in self.logger.history if m.step == epoch}

    def log_outputs(self, cfg: DictConfig, best_checkpoint: str | None, module: pl.LightningModule,
                    datamodule: pl.LightningDataModule) -> None:
        self.logger.flush()
        if cfg.tracking.log_checkpoint and best_checkpoint:
            mlflow.log_artifact(best_checkpoint, "checkpoints")
        if cfg.tracking.log_model:
            # The model holds the best epoch's weights (tested from the best checkpoint): MLflow links
            # that epoch's metrics to it; the test metrics, measured on it, are linked below.
            best_epoch = self._best_epoch(cfg.monitor.metric, cfg.monitor.mode)
            skipped = model_export.log_module(module, datamodule, step=best_epoch)
            if skipped:
                mlflow.set_tag("sweeplab.model", f"not logged: {skipped}"[:MAX_TAG_LENGTH])
            else:
                self._link_to_model(mlflow.last_logged_model().model_id, best_epoch)
        if self.at_end is not None:
            self.at_end(self.client, self.run_id, cfg, module, datamodule)

    def _best_epoch(self, metric: str, mode: str) -> int:
        """The epoch whose checkpoint is the best one: the first with the best value, as ModelCheckpoint keeps."""
        history = [m for m in self.logger.history if m.key == metric and math.isfinite(m.value)]
        if not history:
            return 0
        best = (max if mode == "max" else min)(m.value for m in history)
        return min(m.step for m in history if m.value == best)

    def _link_to_model(self, model_id: str, best_epoch: int) -> None:
        """Metrics measured on the model after training (test/*) become the logged model's too: the same
        points logged again with its id (the run's history keeps one copy of each)."""
        points = [Metric(m.key, m.value, m.timestamp, m.step, model_id=model_id, run_id=self.run_id)
                  for m in self.logger.history if m.key.startswith("test/") and m.step != best_epoch]
        if points:
            self.client.log_batch(self.run_id, metrics=points, synchronous=True)

    def mark_stopped(self, state: str) -> None:
        """A run stopped on purpose says so in its name, the first column of the UI's run list:
        `trial-3 lr=0.001 ...` becomes `trial-3 [pruned] lr=0.001 ...`."""
        head, _, rest = self.run_name.partition(" ")
        self.client.update_run(self.run_id, name=f"{head} [{state.lower()}] {rest}".strip())

    def close(self, status: str, error: str | None = None, details: str | None = None) -> None:
        try:
            self.logger.flush()
            if error:
                mlflow.set_tag("sweeplab.error", hide_passwords(error)[:MAX_TAG_LENGTH])
            if details:
                mlflow.log_text(hide_passwords(details), "error.txt")
        finally:
            mlflow.end_run(status)
