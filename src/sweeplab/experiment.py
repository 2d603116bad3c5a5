"""run_experiment: the one path every run takes (train, sweep trial, reproduce).

config -> seed -> DataModule, LightningModule, Trainer -> data loaded -> MLflow run opened ->
fit -> test on the best checkpoint -> checkpoint, config and model logged -> run closed.
Everything that can be wrong with the input is found before the MLflow run is opened.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import mlflow
import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from mlflow import MlflowClient
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint

from sweeplab import __version__
from sweeplab.config import to_yaml
from sweeplab.errors import ConfigError, cause_line
from sweeplab.tracking import model_export, params, provenance, store
from sweeplab.tracking.epoch_stats import EpochStats
from sweeplab.tracking.figures import LogFigures
from sweeplab.tracking.metric_logger import MlflowBatchLogger

MAX_TAG_LENGTH = 5000


@dataclass
class Result:
    run_id: str
    state: str                      # FINISHED, or the state of a StopRun (e.g. PRUNED)
    metrics: dict[str, float] = field(default_factory=dict)


class StopRun(Exception):
    """Raised by a caller's callback to end a run early on purpose (a pruned sweep trial).

    The run skips testing and model export, is closed FINISHED with the tag
    `sweeplab.stopped=<state>`, and run_experiment returns Result(state=<state>).
    """

    def __init__(self, state: str, reason: str):
        super().__init__(reason)
        self.state = state


@dataclass
class _Parts:
    datamodule: pl.LightningDataModule
    module: pl.LightningModule
    trainer: pl.Trainer
    checkpoint: ModelCheckpoint
    workdir: Path


def run_experiment(cfg: DictConfig, *, overrides: Sequence[str] = (), callbacks: Sequence[pl.Callback] = (),
                   parent_run_id: str | None = None, tags: dict[str, str] | None = None,
                   run_name: str | None = None) -> Result:
    """Train and test one configured experiment, recorded as one MLflow run.

    Callbacks handed in by the caller (a sweep's pruning callback) run beside ours.
    Raises ConfigError, with no run created, when the input is bad.
    """
    uri = store.tracking_uri(cfg.tracking.uri)
    store.check_reachable(uri)
    parts = _build(cfg, callbacks)
    try:
        client = store.open_client(uri)
        mlflow.set_tracking_uri(uri)
        experiment_id = store.experiment_id(client, cfg.tracking.experiment, cfg.tracking.artifact_location)
        provenance_tags, patch = _provenance(cfg, parts.datamodule)
        interval = cfg.tracking.get("system_metrics_interval")
        if interval:
            mlflow.set_system_metrics_sampling_interval(interval)
        run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name or cfg.tracking.run_name,
                               parent_run_id=parent_run_id, tags={**provenance_tags, **(tags or {})},
                               log_system_metrics=bool(interval))
        return _record(cfg, overrides, patch, parts, client, run.info.run_id)
    finally:
        shutil.rmtree(parts.workdir, ignore_errors=True)


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


def _quiet_known_noise() -> None:
    """Lightning chatter that says nothing about this run."""
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_DropTips())
    logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*isinstance.treespec, LeafSpec.*")
    # Metrics are logged per epoch, so the per-step logging interval does not apply.
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")


_quiet_known_noise()


def _build(cfg: DictConfig, callbacks: Sequence[pl.Callback]) -> _Parts:
    """Every object the run needs, and its data loaded; any failure here is bad input."""
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    # Deterministic mode also fills every new tensor with NaN, to expose kernels that read memory
    # they never wrote; that costs ≈8% of a CNN's training step on CPU. Determinism is tested.
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        datamodule = instantiate(cfg.data)
        module = instantiate(cfg.model, optimizer=instantiate(cfg.optimizer),
                             scheduler=instantiate(cfg.scheduler))
    except InstantiationException as e:
        raise ConfigError(cause_line(e)) from None
    try:
        datamodule.setup("fit")
    except (ValueError, OSError) as e:
        raise ConfigError(str(e)) from None
    workdir = Path(tempfile.mkdtemp(prefix="sweeplab-"))
    checkpoint = ModelCheckpoint(dirpath=workdir / "checkpoints", filename="best",
                                 monitor=cfg.monitor.metric, mode=cfg.monitor.mode, save_top_k=1)
    try:
        trainer = instantiate(cfg.trainer, logger=False, default_root_dir=str(workdir),
                              callbacks=[checkpoint, EpochStats(), LogFigures(), *callbacks])
    except InstantiationException as e:
        shutil.rmtree(workdir, ignore_errors=True)
        raise ConfigError(cause_line(e)) from None
    return _Parts(datamodule, module, trainer, checkpoint, workdir)


def _record(cfg: DictConfig, overrides: Sequence[str], patch: str, parts: _Parts,
            client: MlflowClient, run_id: str) -> Result:
    logger = MlflowBatchLogger(client, run_id)
    try:
        params.log_params(client, run_id, params.flatten(OmegaConf.to_container(cfg, resolve=True)))
        mlflow.log_text(to_yaml(cfg), "config.yaml")
        mlflow.log_text("".join(f"{o}\n" for o in overrides), "overrides.txt")
        if patch:
            mlflow.log_text(patch, "git.patch")
        parts.trainer.loggers = [logger]
        parts.trainer.fit(parts.module, datamodule=parts.datamodule)
        best = parts.checkpoint.best_model_path or None
        parts.trainer.test(parts.module, datamodule=parts.datamodule, ckpt_path=best, verbose=False)
        logger.flush()
        if cfg.tracking.log_checkpoint and best:
            mlflow.log_artifact(best, "checkpoints")
        if cfg.tracking.log_model:
            model_files = getattr(parts.datamodule, "model_files", None)
            model_export.log_model(parts.module.net, parts.datamodule.example_input(),
                                   model_files() if model_files else None)
    except StopRun as stop:
        mlflow.set_tags({"sweeplab.stopped": stop.state, "sweeplab.stop_reason": str(stop)[:MAX_TAG_LENGTH]})
        _close(logger, "FINISHED")
        return Result(run_id, stop.state, dict(logger.last))
    except (KeyboardInterrupt, SystemExit):
        _close(logger, "KILLED", "interrupted")
        raise KeyboardInterrupt from None
    except Exception as e:
        _close(logger, "FAILED", f"{type(e).__name__}: {e}", traceback.format_exc())
        raise
    _close(logger, "FINISHED")
    return Result(run_id, "FINISHED", dict(logger.last))


def _close(logger: MlflowBatchLogger, status: str, error: str | None = None, details: str | None = None) -> None:
    try:
        logger.flush()
        if error:
            mlflow.set_tag("sweeplab.error", error[:MAX_TAG_LENGTH])
        if details:
            mlflow.log_text(details, "error.txt")
    finally:
        mlflow.end_run(status)


def _provenance(cfg: DictConfig, datamodule) -> tuple[dict[str, str], str]:
    """Tags that pin down what ran, and the uncommitted diff (logged as git.patch when dirty)."""
    commit, dirty, diff = provenance.git_state(Path.cwd())
    if commit is None:
        commit, dirty, diff = provenance.git_state(Path(__file__).parent)
    tags = {
        "sweeplab.version": __version__,
        "sweeplab.command": provenance.command_line(),
        "sweeplab.seed": str(cfg.seed),
        "sweeplab.data_fingerprint": str(getattr(datamodule, "fingerprint", None)),
        "sweeplab.git.dirty": str(dirty).lower(),
        "sweeplab.torch_threads": str(torch.get_num_threads()),
        **{f"sweeplab.version.{name}": v for name, v in provenance.versions().items()},
    }
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags, diff
