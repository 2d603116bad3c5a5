"""A worker's own failure modes, in-process: a sampler that raises fails its trial; a worker's log is the child's."""

from __future__ import annotations

import gc
import os
import sys
import warnings

import mlflow
import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from sweeplab.config import compose_with_choices
from sweeplab.sweep.driver import start_logged
from sweeplab.sweep.settings import read_settings
from sweeplab.sweep.worker.loop import run_trial

OVERRIDES = ["sweep=digits_cnn", "trainer=smoke"]


class SamplerThatFails(optuna.samplers.RandomSampler):
    """A user's sampler with a bug: it raises when asked for a value."""

    def sample_independent(self, study, trial, param_name, param_distribution):
        raise RuntimeError("the sampler broke")


def test_an_error_while_sampling_fails_the_trial_not_the_worker(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")   # a store of its own, whatever ran before
    settings = read_settings(*compose_with_choices(OVERRIDES))
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "optuna.journal")))
    study = optuna.create_study(study_name="s", storage=storage, sampler=SamplerThatFails(),
                                direction="maximize")
    outcome = run_trial(study.ask(), study, settings, OVERRIDES, [], None, storage)
    assert outcome.state == optuna.trial.TrialState.FAIL
    assert outcome.error == "RuntimeError: the sampler broke"
    (trial,) = study.get_trials()
    assert trial.state == optuna.trial.TrialState.FAIL
    assert trial.user_attrs["sweeplab.error"] == "RuntimeError: the sampler broke"


def test_a_workers_log_file_is_closed_by_the_driver_once_the_worker_has_it(tmp_path):
    log = tmp_path / "worker-0.log"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)   # an unclosed file says so when it is collected
        process = start_logged([sys.executable, "-c", "print('hello from the worker')"], dict(os.environ), log)
        gc.collect()
    try:
        assert not [w for w in caught if "worker-0.log" in str(w.message)], [str(w.message) for w in caught]
        held = {os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")}
        assert str(log.resolve()) not in held
    finally:
        assert process.wait(timeout=60) == 0
    assert log.read_text() == "hello from the worker\n"
