"""A sweep's Optuna study: create or load it, count trials, and recover trials of dead workers."""

from __future__ import annotations

import os
import socket
import warnings
from collections import Counter

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeplab.errors import ConfigError
from sweeplab.forks.alive import alive
from sweeplab.secrets import hide_passwords
from sweeplab.sweep.seeded import best_of, own_trials, seeded_trials
from sweeplab.sweep.settings import SweepSettings

PARENT_RUN_ATTR = "sweeplab.parent_run_id"
WORKER_ATTR = "sweeplab.worker"
RETRY_ATTR = "sweeplab.retry_of"
ERROR_ATTR = "sweeplab.error"
INTERRUPTED = "interrupted"   # the error of a trial stopped by Ctrl-C
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def create_or_load(settings: SweepSettings, storage) -> optuna.Study:
    try:  # loaded first: create_study(load_if_exists=True) would log a line for an existing study
        study = optuna.load_study(study_name=settings.study_name, storage=storage, sampler=settings.sampler(),
                                  pruner=settings.pruner())
    except KeyError:
        study = optuna.create_study(study_name=settings.study_name, storage=storage, sampler=settings.sampler(),
                                    pruner=settings.pruner(), directions=settings.directions, load_if_exists=True)
    existing = [d.name.lower() for d in study.directions]
    if existing != settings.directions:
        raise ConfigError(f"study '{settings.study_name}' exists with directions {existing}, not "
                          f"{settings.directions}; pick another sweep.study_name")
    return study


def load(settings: SweepSettings, storage, worker_index: int = 0) -> optuna.Study:
    """The study for one worker, its sampler seeded apart from its siblings' and from earlier runs."""
    try:
        known = len(optuna.load_study(study_name=settings.study_name, storage=storage).get_trials(deepcopy=False))
        return optuna.load_study(study_name=settings.study_name, storage=storage,
                                 sampler=settings.sampler(seed_offset=1 + 7919 * worker_index + known),
                                 pruner=settings.pruner())
    except KeyError:
        raise ConfigError(f"no study '{settings.study_name}' in {hide_passwords(settings.storage.url)}; "
                          "start the sweep with `sweeplab sweep` first") from None


def reload(settings: SweepSettings) -> optuna.Study:
    """The study read afresh from its storage: after Ctrl-C, whose KeyboardInterrupt may have cut this
    process's replay of a journal short (Optuna counts a record read before applying it)."""
    from sweeplab.sweep.storage import open_storage

    return optuna.load_study(study_name=settings.study_name,
                             storage=open_storage(settings.storage, on_stale=retry_trial))


def counts(study: optuna.Study) -> Counter:
    """Trials by state name: COMPLETE, PRUNED, FAIL, RUNNING, WAITING; "finished" = COMPLETE + PRUNED.
    Trials seeded by a warm start are not the sweep's own: counted apart ("seeded", when there are any),
    so that sweep.n_trials counts only trials this sweep runs."""
    found = Counter(t.state.name for t in own_trials(study))
    found["finished"] = found["COMPLETE"] + found["PRUNED"]
    seeded = len(seeded_trials(study))
    if seeded:
        found["seeded"] = seeded
    return found


def best_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The sweep's own best: trials seeded by a warm start are not candidates (they have no run here)."""
    complete = own_trials(study, states=(TrialState.COMPLETE,))
    if not complete:
        return []
    if seeded_trials(study):
        return best_of(complete, study.directions)
    return study.best_trials if len(study.directions) > 1 else [study.best_trial]


def ranked(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The sweep's own complete trials (seeded ones left out), best first (by the first objective)."""
    reverse = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    complete = own_trials(study, states=(TrialState.COMPLETE,))
    return sorted(complete, key=lambda t: t.values[0], reverse=reverse)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def recover_dead_trials(study: optuna.Study) -> list[int]:
    """RUNNING trials whose worker is gone become FAIL, each retried with the same params.

    A worker on this host is gone when its process is; Optuna's heartbeat (RDB storages)
    catches workers that died on other hosts, and calls retry_trial for them.
    """
    host = socket.gethostname()
    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get(WORKER_ATTR, "")
        worker_host, _, pid = worker.rpartition(":")
        if worker_host == host and pid.isdigit() and not alive(int(pid)):
            try:
                study.tell(trial.number, state=TrialState.FAIL)
            except (ValueError, RuntimeError):
                continue  # another process recovered it first
            retry_trial(study, trial)
            recovered.append(trial.number)
    with warnings.catch_warnings():  # a no-op on storages without heartbeats (a journal file)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    return recovered


def retry_trial(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue the same params again; the next ask() of any worker takes them."""
    study.enqueue_trial(trial.params, user_attrs={RETRY_ATTR: trial.number})


def retry_interrupted(study: optuna.Study) -> list[int]:
    """Trials stopped by Ctrl-C (FAIL, error "interrupted") and not queued again yet: each is queued with
    the same params, once. The caller holds the study lock, so that two processes never both queue one:
    the interrupted worker does this at once, and any process joining later catches one it missed."""
    trials = study.get_trials(deepcopy=False)
    queued = {t.user_attrs.get(RETRY_ATTR) for t in trials}
    retried = []
    for trial in trials:
        if (trial.state == TrialState.FAIL and trial.user_attrs.get(ERROR_ATTR) == INTERRUPTED
                and trial.number not in queued):
            retry_trial(study, trial)
            retried.append(trial.number)
    return retried


def resuming(study: optuna.Study) -> str | None:
    """`resuming study X: 6 finished, retrying 2 interrupted` for a study with trials of its own already;
    None for a new one."""
    own = own_trials(study)
    if not own:
        return None
    retrying = sum(1 for t in own if t.state == TrialState.WAITING and RETRY_ATTR in t.user_attrs)
    return (f"resuming study {study.study_name}: {counts(study)['finished']} finished"
            + (f", retrying {retrying} interrupted" if retrying else ""))


def too_many_failures(study: optuna.Study, limit: int) -> bool:
    """True when the last `limit` trials to end, across all workers, all failed."""
    ended = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished() and t.datetime_complete]
    ended.sort(key=lambda t: t.datetime_complete)
    return len(ended) >= limit and all(t.state == TrialState.FAIL for t in ended[-limit:])
