"""run_experiment: the one path every run takes (train, sweep trial, reproduce, and every DDP rank).

config -> seed -> DataModule, LightningModule, Trainer -> data loaded -> MLflow run opened (rank 0)
-> other ranks started (multi-device) -> fit -> test on the best checkpoint -> checkpoint, config
and model logged (rank 0) -> ranks ended -> run closed.
Everything that can be wrong with the input is found before the MLflow run is opened.
"""

from __future__ import annotations

import abc
import logging
import shutil
import tempfile
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities.model_helpers import is_overridden

from sweeplab import __version__, extras, ranks
from sweeplab.config_callbacks import from_config
from sweeplab.errors import ConfigError, explain_instantiation
from sweeplab.monitor_check import MonitorCheck
from sweeplab.tracking import provenance, store
from sweeplab.tracking.epoch_stats import EpochStats
from sweeplab.tracking.figures import LogFigures
from sweeplab.tracking.recorder import MAX_TAG_LENGTH, NoRecorder, RunRecorder


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
    """Train and test one configured experiment, recorded as one MLflow run, on as many devices as
    the trainer asks for: rank 0 owns the run, the other ranks (started here) train beside it.

    Callbacks handed in by the caller (a sweep's pruning callback) run beside ours; those that are
    OnEveryRank run on every rank. Raises ConfigError, with no run created, when the input is bad.
    """
    follower = ranks.is_follower()
    if not follower:
        uri = store.tracking_uri(cfg.tracking.uri)
        store.check_reachable(uri)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    agreement = ranks.RankAgreement(ranks.config_digest(resolved))
    parts = _build(cfg, [*callbacks, agreement])
    try:
        recorder = NoRecorder()
        if not follower:
            provenance_tags, patch = _provenance(cfg, parts.datamodule)
            recorder = RunRecorder.open(cfg, uri, resolved=resolved, overrides=overrides, patch=patch,
                                        tags={**provenance_tags, **(tags or {})},
                                        parent_run_id=parent_run_id, run_name=run_name)
        handoff = {"config": resolved,
                   "callbacks": [c.follower_spec() for c in callbacks if isinstance(c, OnEveryRank)]}
        return _run(cfg, parts, recorder, handoff, agreement)
    finally:
        shutil.rmtree(parts.workdir, ignore_errors=True)


def _run(cfg: DictConfig, parts: _Parts, recorder: NoRecorder, handoff: dict,
         agreement: ranks.RankAgreement) -> Result:
    """Fit and test inside the run's rank group; the run is closed with what happened."""
    try:
        with ranks.launched(parts.trainer, handoff, parts.workdir) as group:
            try:
                _fit_and_test(cfg, parts, recorder, agreement)
            except StopRun:
                raise
            except Exception as e:
                explained = group.explain(e)
                if explained != f"{type(e).__name__}: {e}":
                    raise ranks.RankFailed(explained) from e
                raise
    except StopRun as stop:
        recorder.set_tags({"sweeplab.stopped": stop.state, "sweeplab.stop_reason": str(stop)[:MAX_TAG_LENGTH],
                           **agreement.tags()})
        recorder.mark_stopped(stop.state)
        recorder.close("FINISHED")
        return Result(recorder.run_id, stop.state, recorder.last)
    except (KeyboardInterrupt, SystemExit):
        recorder.close("KILLED", "interrupted")
        raise KeyboardInterrupt from None
    except Exception as e:
        recorder.close("FAILED", f"{type(e).__name__}: {e}", traceback.format_exc())
        raise
    recorder.close("FINISHED")
    return Result(recorder.run_id, "FINISHED", recorder.last)


def _fit_and_test(cfg: DictConfig, parts: _Parts, recorder: NoRecorder, agreement: ranks.RankAgreement) -> None:
    parts.trainer.loggers = list(recorder.loggers)
    parts.trainer.fit(parts.module, datamodule=parts.datamodule)
    recorder.set_tags(agreement.tags())
    best = parts.checkpoint.best_model_path or None
    if is_overridden("test_step", parts.module) and is_overridden("test_dataloader", parts.datamodule):
        parts.trainer.test(parts.module, datamodule=parts.datamodule, ckpt_path=best, verbose=False)
    elif best:   # no test (a module or data module without one): the model exported is still the best epoch's
        saved = torch.load(best, map_location=parts.module.device, weights_only=False)
        parts.module.load_state_dict(saved["state_dict"])
    recorder.log_outputs(cfg, best, parts.module, parts.datamodule)


class OnEveryRank(abc.ABC):
    """A callback handed to run_experiment that must also run on ranks > 0 (e.g. one that broadcasts
    rank 0's decisions): those ranks build their own copy from follower_spec()."""

    @abc.abstractmethod
    def follower_spec(self) -> dict:
        """A `_target_` config (JSON-serialisable) that builds this callback's counterpart on ranks > 0."""


class _DropTips(logging.Filter):
    """Tips, and the device inventory printed by every Trainer (the run's tags say where it ran)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("💡 Tip", "GPU available:", "TPU available:", "HPU available:"))


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
        # Only a module that names `optimizer`/`scheduler` parameters gets those groups; any other
        # LightningModule makes its own in configure_optimizers.
        groups = {name: instantiate(cfg[name]) for name in extras.optimizer_groups(cfg.model)
                  if cfg.get(name) is not None}
        module = instantiate(cfg.model, **groups)
    except InstantiationException as e:
        raise ConfigError(explain_instantiation(e, cfg)) from None
    config_callbacks = from_config(cfg)
    try:
        if not ranks.is_follower():   # Lightning's order: download (once per machine), then set up
            datamodule.prepare_data()
        datamodule.setup("fit")
    except (ValueError, OSError) as e:
        raise ConfigError(str(e)) from None
    workdir = Path(tempfile.mkdtemp(prefix="sweeplab-"))
    checkpoint = ModelCheckpoint(dirpath=workdir / "checkpoints", filename="best",
                                 monitor=cfg.monitor.metric, mode=cfg.monitor.mode, save_top_k=1)
    monitor = MonitorCheck(cfg.monitor.metric, str(cfg.model.get("_target_")))
    try:
        trainer = instantiate(cfg.trainer, logger=False, default_root_dir=str(workdir),
                              callbacks=[checkpoint, EpochStats(), LogFigures(), monitor, *config_callbacks,
                                         *callbacks])
        ranks.processes_needed(trainer)
    except InstantiationException as e:
        shutil.rmtree(workdir, ignore_errors=True)
        raise ConfigError(explain_instantiation(e, cfg)) from None
    except ConfigError:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return _Parts(datamodule, module, trainer, checkpoint, workdir)


def _provenance(cfg: DictConfig, datamodule) -> tuple[dict[str, str], str]:
    """Tags that pin down what ran, and the uncommitted diff (logged as git.patch when dirty)."""
    commit, dirty, diff = provenance.git_state(Path.cwd())
    if commit is None:
        commit, dirty, diff = provenance.git_state(Path(__file__).parent)
    tags = {
        "sweeplab.version": __version__,
        "sweeplab.command": provenance.command_line(),
        "sweeplab.seed": str(cfg.seed),
        # "none": the data module offers no fingerprint (see sweeplab.extras.Fingerprinted).
        "sweeplab.data_fingerprint": str((datamodule.fingerprint if isinstance(datamodule, extras.Fingerprinted)
                                          else None) or "none"),
        "sweeplab.optimizer_groups": ",".join(extras.optimizer_groups(cfg.model)) or "none",
        "sweeplab.git.dirty": str(dirty).lower(),
        "sweeplab.torch_threads": str(torch.get_num_threads()),
        **{f"sweeplab.version.{name}": v for name, v in provenance.versions().items()},
    }
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags, diff
