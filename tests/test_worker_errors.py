"""A worker's own failure modes, in-process: a sampler that raises fails its trial."""

from __future__ import annotations

import mlflow
import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from sweeplab.config import compose_with_choices
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
