"""Optuna heartbeats for a trial run in ask/tell mode, through Optuna's public storage API only.

Optuna records a trial's heartbeat only inside `study.optimize`; a worker that asks and tells must
record it itself, or `optuna.storages.fail_stale_trials` (RDB storages) never learns that a trial's
worker died on another machine: a RUNNING trial with no heartbeat is never stale. Optuna's own
heartbeat thread (`optuna.storages._heartbeat`) and the trial's storage id (`trial._trial_id`) are
private, so this records the beats itself with public `RDBStorage` methods: `get_heartbeat_interval`,
`record_heartbeat`, `get_study_id_from_name` and `get_trial_id_from_study_id_trial_number`.
"""

from __future__ import annotations

import threading

import optuna


class Heartbeat:
    """Records the trial's heartbeat now and then every `interval` seconds, until stop()."""

    def __init__(self, storage, trial_id: int | None, interval: int | None):
        self.storage = storage
        self.trial_id = trial_id
        self.interval = interval           # None: the storage keeps no heartbeats (a journal file)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Heartbeat:
        if self.interval is None:
            return self
        self._record()  # the first beat before returning: from now on the trial counts as alive
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{self.trial_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            self._record()

    def _record(self) -> None:
        try:
            self.storage.record_heartbeat(self.trial_id)
        except Exception:  # a passing database hiccup must not end the trial: the next beat may get through
            pass


def start_heartbeat(storage, study_name: str, trial_number: int) -> Heartbeat:
    """The running heartbeat of trial `trial_number`; a no-op on storages without heartbeats."""
    # RDBStorage is Optuna's storage with heartbeats (a journal file has none).
    interval = storage.get_heartbeat_interval() if isinstance(storage, optuna.storages.RDBStorage) else None
    if interval is None:
        return Heartbeat(storage, None, None)
    trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study_name),
                                                               trial_number)
    return Heartbeat(storage, trial_id, interval).start()
