"""Ctrl-C stays Ctrl-C when the store is too busy to close the run (SQLite locked, as when every worker of a
sweep stops at once): the caller sees KeyboardInterrupt, so a trial is recorded "interrupted", not crashed."""

from __future__ import annotations

import sqlite3

import mlflow
import pytest
from mlflow import MlflowClient

from sweeplab.experiment import _closed_on_error
from sweeplab.tracking.recorder import RunRecorder


def test_ctrl_c_is_what_the_caller_sees_even_when_the_store_cannot_close_the_run(tmp_path):
    """≈45 s, nearly all of it waiting: MLflow waits 20 s for SQLite's lock on each of the close's two writes."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    run = mlflow.start_run()   # the active run, as RunRecorder.open leaves it
    lock = sqlite3.connect(tmp_path / "mlflow.db", isolation_level=None)
    try:
        with pytest.raises(KeyboardInterrupt):
            with _closed_on_error(RunRecorder(MlflowClient(uri), run.info.run_id)):
                lock.execute("BEGIN EXCLUSIVE")   # no other connection reads or writes until it ends
                raise KeyboardInterrupt
    finally:
        lock.execute("ROLLBACK")
        lock.close()
        while mlflow.active_run():
            mlflow.end_run()
