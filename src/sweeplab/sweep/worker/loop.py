"""A sweep worker: pull trials from the shared study and run each through run_experiment.

One process imports torch once and runs trials until the study has n_trials finished, the
deadline passes, or too many trials in a row failed. Any number of workers, on any number of
machines, can share a study; none waits for another.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import time
from dataclasses import dataclass

import mlflow
import optuna
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, open_dict
from optuna.trial import TrialState

from sweeplab.config import compose_trial
from sweeplab.experiment import run_experiment
from sweeplab.explain.run_end import explain_at_end
from sweeplab.secrets import hide_passwords
from sweeplab.sweep import study as studies
from sweeplab.sweep.finish import finish_sweep
from sweeplab.sweep.join import join
from sweeplab.sweep.report.summary import log_best
from sweeplab.sweep.settings import SweepSettings
from sweeplab.sweep.storage import slot_lock, study_lock
from sweeplab.sweep.worker.heartbeat import start_heartbeat  # ask/tell mode must record heartbeats itself
from sweeplab.sweep.worker.objective import EpochValues
from sweeplab.sweep.worker.pruning import TrialReporter
from sweeplab.sweep.worker_env import DEADLINE_ENV, EXIT_TOO_MANY_FAILURES, THREADS_ENV, WORKER_INDEX_ENV



@dataclass
class TrialOutcome:
    number: int
    state: TrialState
    values: list[float] | None = None
    error: str | None = None


def work(settings: SweepSettings, overrides: list[str], config_dirs: list[str], uri: str) -> int:
    """Create or join the study and its parent run, run trials until none are left; return the exit code.

    A worker started by hand, by SLURM or by Kubernetes (not by a driver) that leaves with the
    study complete records the summary on the parent run and closes it FINISHED; one that leaves
    it incomplete leaves the parent RUNNING for the others (and any later resume).
    """
    _set_threads()
    joined = join(settings, overrides, uri)
    index = os.environ.get(WORKER_INDEX_ENV)
    # A worker started by hand (another machine) has no index: its process id keeps it apart.
    study = studies.load(settings, joined.storage, int(index or os.getpid()))
    code = _pull_trials(study, settings, overrides, config_dirs, joined.parent_run_id, joined.storage)
    if index is None and code == 0 and finish_sweep(joined, settings, only_if_complete=True):
        print(f"study {settings.study_name} complete: summary recorded on parent run "
              f"{joined.parent_run_id} (FINISHED)", flush=True)
    if index is None and code == 0 and not any(studies.counts(study)[s] for s in ("finished", "RUNNING")):
        # The timeout came with no trial finished, here or anywhere: not a success (a driver's own
        # workers leave this to the driver, which would take exit 1 for a death and restart them).
        print(f"sweeplab: no trial of study {settings.study_name} finished", file=sys.stderr, flush=True)
        return 1
    return code


def _pull_trials(study: optuna.Study, settings: SweepSettings, overrides: list[str], config_dirs: list[str],
                 parent_run_id: str, storage) -> int:
    deadline = float(os.environ.get(DEADLINE_ENV) or (time.time() + settings.timeout if settings.timeout else math.inf))
    while time.time() < deadline:
        studies.recover_dead_trials(study)
        with slot_lock(settings.storage, settings.study_name):
            found = studies.counts(study)
            if found["finished"] + found["RUNNING"] >= settings.n_trials:
                return 0
            trial = study.ask()
            trial.set_user_attr(studies.WORKER_ATTR, studies.worker_id())
        outcome = run_trial(trial, study, settings, overrides, config_dirs, parent_run_id, storage)
        if outcome.state == TrialState.COMPLETE:
            log_best(mlflow.MlflowClient(), parent_run_id, study, settings)
        print(f"trial {outcome.number}: {outcome.state.name}"
              + (f" {outcome.values}" if outcome.values else "") + (f" ({outcome.error})" if outcome.error else ""),
              flush=True)
        if outcome.state == TrialState.FAIL and studies.too_many_failures(study, settings.max_consecutive_failures):
            print(f"sweeplab: stopping: the last {settings.max_consecutive_failures} trials failed; "
                  f"last error: {outcome.error}", file=sys.stderr, flush=True)
            return EXIT_TOO_MANY_FAILURES
    return 0


def run_trial(trial: optuna.Trial, study: optuna.Study, settings: SweepSettings, overrides: list[str],
              config_dirs: list[str], parent_run_id: str | None, storage) -> TrialOutcome:
    tags = {"sweeplab.role": "trial", "optuna.study_name": settings.study_name,
            "optuna.trial_number": str(trial.number), "optuna.state": "RUNNING"}
    reporter = TrialReporter(trial, settings.metrics[0], prune=not settings.multi_objective)
    epochs = EpochValues(settings.metrics, settings.directions)
    heartbeat = start_heartbeat(storage, study.study_name, trial.number)
    try:
        trial_overrides = settings.space.suggest(trial)   # a sampler's error fails this trial, not the worker
        cfg = trial_config(overrides, config_dirs, settings, trial_overrides)
        result = run_experiment(cfg, overrides=overrides + trial_overrides, callbacks=[reporter, epochs],
                                parent_run_id=parent_run_id, tags=tags, run_name=_run_name(trial),
                                at_end=explain_at_end)   # it passes over a trial's own run
    except KeyboardInterrupt:
        # Ctrl-C again (or the driver passing it on) must not cut this short: the trial turns FAIL and is
        # queued again with the same params, exactly once (a process joining later checks it was).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        outcome = TrialOutcome(trial.number, TrialState.FAIL, error=studies.INTERRUPTED)
        _tell(study, trial, outcome)   # the study first: resuming needs it; the run is tidied later if need be
        with contextlib.suppress(MlflowException):   # a store busy with every worker stopping at once
            _mark_run(outcome, _run_of(settings, trial.number))
        with study_lock(settings.storage, settings.study_name):
            studies.retry_interrupted(study)
        raise
    except Exception as e:  # any failure of one trial fails that trial only
        # A driver's error text can carry a URL with its password (SQLAlchemy, psycopg2).
        error = hide_passwords(f"{type(e).__name__}: {e}")
        return _end(study, trial, TrialOutcome(trial.number, TrialState.FAIL, error=error),
                    _run_of(settings, trial.number))
    finally:
        heartbeat.stop()
    if result.state == "PRUNED":
        return _end(study, trial, TrialOutcome(trial.number, TrialState.PRUNED), result.run_id)
    values = epochs.values(settings.objective, result.metrics)
    if not all(math.isfinite(v) for v in values):
        error = f"objective {settings.metrics} is {values}"
        mlflow.MlflowClient().set_tag(result.run_id, "sweeplab.error", error)
        return _end(study, trial, TrialOutcome(trial.number, TrialState.FAIL, error=error), result.run_id)
    return _end(study, trial, TrialOutcome(trial.number, TrialState.COMPLETE, values=values), result.run_id)


def _run_name(trial: optuna.Trial) -> str:
    """`trial-7 lr=0.0012 batch_size=64 ...`: the trial and its sampled values, readable in the UI's run list."""
    shown = " ".join(f"{key.rsplit('.', 1)[-1]}={value:.3g}" if isinstance(value, float)
                     else f"{key.rsplit('.', 1)[-1]}={value}" for key, value in trial.params.items())
    return f"trial-{trial.number} {shown}".strip()[:250]


def trial_config(overrides: list[str], config_dirs: list[str], settings: SweepSettings,
                 trial_overrides: list[str] = ()) -> DictConfig:
    """The trial's experiment config: the sweep node dropped, so it is exactly what `train` would run."""
    cfg = compose_trial(overrides, list(trial_overrides), config_dirs)
    with open_dict(cfg):
        del cfg["sweep"]
        cfg.tracking.experiment = settings.mlflow_experiment
        # A worker's output is a log (or a terminal shared by trials): one line per trial, no progress bars.
        cfg.trainer.enable_progress_bar = False
    return cfg


def _end(study: optuna.Study, trial: optuna.Trial, outcome: TrialOutcome, run_id: str | None = None) -> TrialOutcome:
    _tell(study, trial, outcome)
    _mark_run(outcome, run_id)
    return outcome


def _tell(study: optuna.Study, trial: optuna.Trial, outcome: TrialOutcome) -> None:
    if outcome.error:
        trial.set_user_attr("sweeplab.error", outcome.error[:2000])
    study.tell(trial, outcome.values, state=outcome.state)


def _mark_run(outcome: TrialOutcome, run_id: str | None) -> None:
    """The trial's MLflow run says how the trial ended (and a run that finished is FAILED when the trial failed)."""
    if run_id:
        client = mlflow.MlflowClient()
        client.set_tag(run_id, "optuna.state", outcome.state.name)
        if outcome.error and outcome.state == TrialState.FAIL and _status(client, run_id) == "FINISHED":
            client.set_terminated(run_id, "FAILED")


def _run_of(settings: SweepSettings, number: int) -> str | None:
    """The MLflow run opened for trial `number` of the study, if the trial got that far. Looked up by its
    tags: `mlflow.last_active_run()` is process-wide and may name a run of another store."""
    experiment = mlflow.get_experiment_by_name(settings.mlflow_experiment)
    if experiment is None:
        return None
    runs = mlflow.MlflowClient().search_runs(
        [experiment.experiment_id], max_results=1, order_by=["attributes.start_time DESC"],
        filter_string=f"tags.`optuna.study_name` = '{settings.study_name}' "
                      f"and tags.`optuna.trial_number` = '{number}'")
    return runs[0].info.run_id if runs else None


def _status(client, run_id: str) -> str:
    return client.get_run(run_id).info.status


def _set_threads() -> None:
    threads = os.environ.get(THREADS_ENV)
    if threads:
        import torch

        torch.set_num_threads(int(threads))
