"""Ctrl-C stays Ctrl-C when the store cannot close the run (SQLite locked for longer than MLflow waits, as seen
when every worker of a sweep stops at once): the caller sees KeyboardInterrupt, so a trial is recorded
"interrupted", not crashed."""

from __future__ import annotations

import sqlite3

import mlflow
import pytest
from mlflow import MlflowClient

from sweeplab.experiment import _closed_on_error
from sweeplab.tracking.recorder import RunRecorder


def test_ctrl_c_is_what_the_caller_sees_even_when_the_store_cannot_close_the_run(tmp_path):
    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    mlflow.set_tracking_uri(uri)
    run = mlflow.start_run()   # the active run, as RunRecorder.open leaves it
    try:
        with pytest.raises(KeyboardInterrupt):
            with _closed_on_error(RunRecorder(MlflowClient(uri), run.info.run_id)):
                # Every write to the run now fails at once (a lock fails the same way, after MLflow's 20 s wait).
                with sqlite3.connect(db) as store:
                    store.execute("ALTER TABLE runs RENAME TO runs_away")
                raise KeyboardInterrupt
    finally:
        with sqlite3.connect(db) as store:
            store.execute("ALTER TABLE runs_away RENAME TO runs")
        while mlflow.active_run():
            mlflow.end_run()
