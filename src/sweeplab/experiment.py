"""run_experiment: the one path every run takes (train, sweep trial, reproduce, and every DDP rank).

config -> seed -> DataModule, LightningModule, Trainer -> data loaded -> MLflow run opened (rank 0)
-> other ranks started (multi-device) -> fit -> test on the best checkpoint -> checkpoint, config
and model logged (rank 0) -> ranks ended -> run closed. With data.folds=K that is done once per fold,
each fold a nested run `fold-<k>` of the run, which gets the folds' cv/ means and stds.
Everything that can be wrong with the input is found before the MLflow run is opened.
"""

from __future__ import annotations

import abc
import copy
import logging
import math
import shutil
import tempfile
import time
import traceback
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities.model_helpers import is_overridden

from sweeplab import __version__, cross_validation, extras
from sweeplab.config import check_set, model_groups
from sweeplab.config.callbacks import from_config
from sweeplab.config.monitor_check import MonitorCheck
from sweeplab.errors import ConfigError, explain_instantiation
from sweeplab.ranks import follower, launch as ranks
from sweeplab.tracking import provenance, store
from sweeplab.tracking.built_optimizer import LogBuiltOptimizer
from sweeplab.tracking.epoch_stats import EpochStats
from sweeplab.tracking.figures import LogFigures
from sweeplab.tracking.recorder import MAX_TAG_LENGTH, AtEnd, NoRecorder, RunRecorder
from sweeplab.transfer.prepare import prepare_module


@dataclass
class Result:
    run_id: str
    state: str                      # FINISHED, or the state of a StopRun (e.g. PRUNED)
    metrics: dict[str, float] = field(default_factory=dict)      # each metric's last value
    best_epoch: dict[str, float] = field(default_factory=dict)   # the values of the epoch whose checkpoint was kept


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
    tags: dict[str, str] = field(default_factory=dict)   # where the module's initial weights came from (finetune)


@dataclass
class _Prepared:
    """One run's config and objects, built and checked, with no MLflow run yet."""
    cfg: DictConfig
    resolved: dict
    agreement: ranks.RankAgreement
    parts: _Parts


def run_experiment(cfg: DictConfig, *, overrides: Sequence[str] = (), callbacks: Sequence[pl.Callback] = (),
                   parent_run_id: str | None = None, tags: dict[str, str] | None = None,
                   run_name: str | None = None, at_end: AtEnd | None = None) -> Result:
    """Train and test one configured experiment, recorded as one MLflow run, on as many devices as
    the trainer asks for: rank 0 owns the run, the other ranks (started here) train beside it.

    Callbacks handed in by the caller (a sweep's pruning callback) run beside ours; those that are
    OnEveryRank run on every rank, those that are FoldAware hear of each fold. `at_end` runs on rank 0 once
    each run's model is logged (`train` and `reproduce` pass explain's explain_at_end). Raises ConfigError,
    with no run created, when the input is bad.
    """
    check_set(cfg)
    cfg = _only_groups_it_takes(cfg)
    uri = None
    if not ranks.is_follower():
        uri = store.tracking_uri(cfg.tracking.uri)
        store.check_reachable(uri)
    if cross_validation.wanted(cfg):
        return _cross_validate(cfg, uri, overrides, callbacks, parent_run_id, tags, run_name, at_end)
    return _record(_prepare(cfg, callbacks), uri, overrides, callbacks, parent_run_id, tags, run_name, at_end)


def _only_groups_it_takes(cfg: DictConfig) -> DictConfig:
    """The config without the optimizer and scheduler groups the model does not take: a module that builds
    its own in configure_optimizers would otherwise have sweeplab's unused defaults recorded as what ran
    (LogBuiltOptimizer records what it built instead)."""
    unused = [name for name in model_groups.unused_optimizer_groups(cfg.model) if name in cfg]
    if not unused:
        return cfg
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        for name in unused:
            del cfg[name]
    return cfg


def _prepare(cfg: DictConfig, callbacks: Sequence[pl.Callback]) -> _Prepared:
    resolved = OmegaConf.to_container(cfg, resolve=True)
    agreement = ranks.RankAgreement(ranks.config_digest(resolved))
    return _Prepared(cfg, resolved, agreement, _build(cfg, [*callbacks, agreement]))


def _record(prepared: _Prepared, uri: str | None, overrides: Sequence[str], callbacks: Sequence[pl.Callback],
            parent_run_id: str | None, tags: dict[str, str] | None, run_name: str | None,
            at_end: AtEnd | None = None) -> Result:
    """Train and test the prepared run as one MLflow run (recorded by rank 0)."""
    cfg, parts = prepared.cfg, prepared.parts
    try:
        recorder = NoRecorder()
        if not ranks.is_follower():
            recorder = _open_run(cfg, uri, prepared.resolved, overrides, parts.datamodule,
                                 {**parts.tags, **(tags or {})}, parent_run_id, run_name, at_end)
        handoff = {"config": prepared.resolved,
                   "callbacks": [c.follower_spec() for c in callbacks if isinstance(c, OnEveryRank)]}
        return _run(cfg, parts, recorder, handoff, prepared.agreement)
    finally:
        shutil.rmtree(parts.workdir, ignore_errors=True)


def _open_run(cfg: DictConfig, uri: str, resolved: dict, overrides: Sequence[str], datamodule,
              tags: dict[str, str] | None, parent_run_id: str | None, run_name: str | None,
              at_end: AtEnd | None = None) -> RunRecorder:
    provenance_tags, patch = _provenance(cfg, datamodule)
    return RunRecorder.open(cfg, uri, resolved=resolved, overrides=overrides, patch=patch,
                            tags={**provenance_tags, **(tags or {})}, parent_run_id=parent_run_id, run_name=run_name,
                            at_end=at_end)


def _cross_validate(cfg: DictConfig, uri: str, overrides: Sequence[str], callbacks: Sequence[pl.Callback],
                    parent_run_id: str | None, tags: dict[str, str] | None, run_name: str | None,
                    at_end: AtEnd | None) -> Result:
    """Every fold through the one path above, each a nested run `fold-<k>` of this run, which gets the
    folds' cv/ means and stds. A fold stopped on purpose (pruned) stops the rest. The folds' settings and
    the first fold's data are checked before this run opens."""
    configs = cross_validation.fold_configs(cfg)
    steps = cross_validation.epochs_per_fold(cfg)
    first = _prepare(configs[0], callbacks)
    cv_tags = {**first.parts.tags, **(tags or {}), "sweeplab.folds": str(len(configs)), "sweeplab.fold_strategy": str(cfg.data.fold_strategy)}
    try:
        recorder = _open_run(cfg, uri, OmegaConf.to_container(cfg, resolve=True), overrides, first.parts.datamodule,
                             cv_tags, parent_run_id, run_name)
    except BaseException:
        shutil.rmtree(first.parts.workdir, ignore_errors=True)
        raise
    summaries: list[dict[str, float]] = []
    fold_runs: list[str] = []
    fold = 0
    started = time.monotonic()
    with _closed_on_error(recorder, lambda: f"fold {fold}: "):
        for fold, fold_cfg in enumerate(configs):
            prepared = first if fold == 0 else _prepare(fold_cfg, callbacks)
            for callback in callbacks:
                if isinstance(callback, cross_validation.FoldAware):
                    callback.start_fold(fold, fold * steps, last=fold == len(configs) - 1)
            result = _record(prepared, uri, [*overrides, f"data.fold={fold}"], callbacks, recorder.run_id,
                             {"sweeplab.role": "fold", "sweeplab.fold": str(fold), "sweeplab.cv_run_id": recorder.run_id},
                             f"fold-{fold}", at_end)
            if result.state != "FINISHED":
                recorder.set_tags({"sweeplab.stopped": result.state,
                                   "sweeplab.stop_reason": f"fold {fold} ({result.run_id}) stopped: {result.state}"})
                recorder.mark_stopped(result.state)
                recorder.close("FINISHED")
                return Result(recorder.run_id, result.state)
            summaries.append(cross_validation.fold_summary(result.best_epoch, result.metrics))
            fold_runs.append(result.run_id)
            if not ranks.is_follower():
                print(cross_validation.progress_line(fold, len(configs), cfg.monitor.metric, summaries[-1],
                                                     time.monotonic() - started), flush=True)
        stats = cross_validation.summary(summaries)
        recorder.log_summary(stats)
        recorder.set_tags({"sweeplab.fold_run_ids": ",".join(fold_runs),
                           "sweeplab.cv_best_fold_run_id": _best_fold(fold_runs, summaries, cfg.monitor)})
    recorder.close("FINISHED")
    return Result(recorder.run_id, "FINISHED", {**stats, **cross_validation.means(stats)})


def _best_fold(run_ids: list[str], summaries: list[dict[str, float]], monitor) -> str:
    """The fold run whose model is best by the monitored metric (the one `register` takes for this run)."""
    best = 0
    for i, summary in enumerate(summaries):
        value, kept = summary.get(monitor.metric, math.nan), summaries[best].get(monitor.metric, math.nan)
        if math.isnan(kept) or (value > kept if monitor.mode == "max" else value < kept):
            best = i
    return run_ids[best]


def _run(cfg: DictConfig, parts: _Parts, recorder: NoRecorder, handoff: dict,
         agreement: ranks.RankAgreement) -> Result:
    """Fit and test inside the run's rank group; the run is closed with what happened."""
    with _closed_on_error(recorder):
        try:
            with ranks.launched(parts.trainer, handoff, parts.workdir, FOLLOWER_ENTRY) as group:
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
    best_epoch = recorder.at_best_epoch(cfg.monitor.metric, cfg.monitor.mode)
    recorder.close("FINISHED")
    return Result(recorder.run_id, "FINISHED", recorder.last, best_epoch)


@contextmanager
def _closed_on_error(recorder: NoRecorder, context: Callable[[], str] = lambda: ""):
    """An error inside closes the run FAILED (its message, after `context()`, in tag sweeplab.error) and
    is raised again; Ctrl-C closes it KILLED."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit):
        try:
            recorder.close("KILLED", "interrupted")
        finally:   # a store too busy to close the run (SQLite locked by the other workers) does not hide Ctrl-C
            raise KeyboardInterrupt from None
    except Exception as e:
        recorder.close("FAILED", f"{context()}{type(e).__name__}: {e}", traceback.format_exc())
        raise


def _fit_and_test(cfg: DictConfig, parts: _Parts, recorder: NoRecorder, agreement: ranks.RankAgreement) -> None:
    parts.trainer.loggers = list(recorder.loggers)
    if "optimizer" not in cfg:   # the module builds its own: record what it built
        parts.trainer.callbacks.append(LogBuiltOptimizer(recorder.log_params))
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


# What the rank machinery runs in ranks 1..K-1 (it is handed this name and imports nothing above it).
FOLLOWER_ENTRY = f"{__name__}:follow"


def follow(handoff: str) -> int:
    """A follower rank's whole run: rank 0's resolved config and every-rank callbacks (ranks/follower.py
    reads them from the handoff file) through the same run_experiment, which records nothing on this rank."""
    return follower.main(handoff, lambda cfg, callbacks: run_experiment(cfg, callbacks=callbacks))


class _DropTips(logging.Filter):
    """Tips, the device inventory printed by every Trainer (the run's tags say where it ran), and the
    temporary checkpoint path reloaded for the test (the run records its checkpoint)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("💡 Tip", "GPU available:", "TPU available:", "HPU available:",
                                                # the run's temporary checkpoint, reloaded for its test
                                                "Restoring states from the checkpoint path at",
                                                "Loaded model weights from the checkpoint at"))


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
    datamodule, module = build_modules(cfg)
    # finetune: init_from's weights loaded, freeze patterns and the backbone's learning rate checked.
    transfer = prepare_module(cfg, module, store.tracking_uri(cfg.tracking.uri), quiet=ranks.is_follower())
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
                                         *transfer.callbacks, *callbacks])
        ranks.processes_needed(trainer)
    except InstantiationException as e:
        shutil.rmtree(workdir, ignore_errors=True)
        raise ConfigError(explain_instantiation(e, cfg)) from None
    except ConfigError:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    # What the module started from (a pretrained checkpoint), beside finetune.init_from's source.
    started_from = module.provenance_tags() if isinstance(module, extras.Provenance) else {}
    return _Parts(datamodule, module, trainer, checkpoint, workdir, {**started_from, **transfer.tags})


def build_modules(cfg: DictConfig) -> tuple[pl.LightningDataModule, pl.LightningModule]:
    """The run's data module and LightningModule, as its config says (also how `explain` rebuilds a run)."""
    try:
        datamodule = instantiate(cfg.data)
        # Only a module that names `optimizer`/`scheduler` parameters gets those groups; any other
        # LightningModule makes its own in configure_optimizers.
        groups = {name: instantiate(cfg[name]) for name in model_groups.optimizer_groups(cfg.model)
                  if cfg.get(name) is not None}
        return datamodule, instantiate(cfg.model, **groups)
    except InstantiationException as e:
        raise ConfigError(explain_instantiation(e, cfg)) from None


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
        "sweeplab.optimizer_groups": ",".join(model_groups.optimizer_groups(cfg.model)) or "none",
        "sweeplab.git.dirty": str(dirty).lower(),
        "sweeplab.torch_threads": str(torch.get_num_threads()),
        **{f"sweeplab.version.{name}": v for name, v in provenance.versions().items()},
    }
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags, diff
