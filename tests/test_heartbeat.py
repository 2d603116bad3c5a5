"""A trial's heartbeat in ask/tell mode, on real RDB storages: Optuna's own fail_stale_trials reads it."""

from __future__ import annotations

import threading
import time
import uuid
import warnings

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from sweeplab.sweep.worker.heartbeat import start_heartbeat

INTERVAL, GRACE = 1, 3   # seconds; SQLite's clock has whole seconds, so the grace is well above the interval


@pytest.fixture(params=["sqlite", "postgresql"])
def rdb_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'optuna.db'}"
    return request.getfixturevalue("postgres_url")


def test_a_beating_trial_stays_running_and_a_silent_one_fails_and_is_retried(rdb_url):
    stale = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(rdb_url, heartbeat_interval=INTERVAL, grace_period=GRACE,
                                             heartbeat_stale_trial_callback=lambda s, t: stale.append(t.number))
    study = optuna.create_study(study_name=f"hb-{uuid.uuid4().hex[:8]}", storage=storage)
    alive, dead = study.ask(), study.ask()
    beating = start_heartbeat(storage, study.study_name, alive.number)
    silent = start_heartbeat(storage, study.study_name, dead.number)
    silent.stop()  # its worker "dies" right after its first beat
    # The ids found through the public storage API are those of these trials.
    assert storage.get_trial(beating.trial_id).number == alive.number
    assert storage.get_trial(silent.trial_id).number == dead.number
    assert beating.interval == INTERVAL
    try:
        time.sleep(GRACE + 1.5)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)   # what every worker runs before it asks
        states = {t.number: t.state.name for t in study.get_trials()}
        assert states == {alive.number: "RUNNING", dead.number: "FAIL"}
        assert stale == [dead.number]
    finally:
        beating.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("heartbeat-")]
    study.tell(alive, 1.0)


def test_a_journal_storage_has_no_heartbeat(tmp_path):
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "optuna.journal")))
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    heartbeat = start_heartbeat(storage, study.study_name, trial.number)
    assert heartbeat.interval is None and heartbeat.trial_id is None
    assert not [t for t in threading.enumerate() if t.name.startswith("heartbeat-")]
    heartbeat.stop()


def test_open_storage_hands_optuna_the_stale_trial_callback_by_its_current_name(tmp_path):
    from sweeplab.sweep.storage import open_storage, parse_storage

    def on_stale(study, trial):
        pass

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        storage = open_storage(parse_storage(f"sqlite:///{tmp_path / 'optuna.db'}"), on_stale=on_stale)
    assert storage.get_heartbeat_stale_trial_callback() is on_stale
    assert not [w for w in caught if issubclass(w.category, FutureWarning)], [str(w.message) for w in caught]
