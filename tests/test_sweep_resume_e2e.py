"""Rerunning a sweep, through the installed command: only the sweep that made a study continues it
(unless `sweep.resume=force`), a sweep that finished no trial fails, and a trial stopped by Ctrl-C runs
again with its params."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

import optuna
from mlflow import MlflowClient

from conftest import SWEEPLAB, run_cli, store_uri

NEW_LR = "sweep.params.optimizer.lr=tag(log, interval(1e-3, 1e-2))"


def study_of(cwd: Path, name: str = "digits_cnn") -> optuna.Study:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(cwd / "mlruns" / "optuna.journal")))
    return optuna.load_study(study_name=name, storage=storage)


def runs_of(cwd: Path, experiment: str = "sweep-digits_cnn") -> list:
    client = MlflowClient(store_uri(cwd))
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id]) if found else []


def parent_of(cwd: Path):
    (parent,) = [r for r in runs_of(cwd) if r.data.tags.get("sweeplab.role") == "sweep"]
    return parent


def snapshot(cwd: Path):
    """Everything a rerun could write: the study's trials and attrs, every run of the sweep."""
    study = study_of(cwd)
    trials = [(t.number, t.state.name, t.params, t.user_attrs) for t in study.trials]
    runs = sorted((r.info.run_id, r.info.status, r.info.end_time, r.data.tags, r.data.params, r.data.metrics)
                  for r in runs_of(cwd))
    return trials, study.user_attrs, runs


def one_line(done: subprocess.CompletedProcess) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sweeplab: error:"), done.stderr[-3000:]
    return lines[0]


def test_sweep_where_every_trial_fails_exits_nonzero(tmp_path):
    done = run_cli("sweep", "sweep=digits_cnn", "trainer=smoke", "optimizer=sgd",
                   "sweep.params.optimizer.lr=choice(1e30)", "sweep.max_consecutive_failures=1000",
                   "sweep.timeout=15", cwd=tmp_path)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "sweeplab: no trial of study digits_cnn finished" in done.stderr
    # Trials start once the worker is up (a few seconds of the 15, more on a busy machine): each failed, none finished.
    found = Counter(t.state.name for t in study_of(tmp_path).trials)
    assert found["FAIL"] >= 1 and set(found) == {"FAIL"}, found
    assert parent_of(tmp_path).info.status == "FAILED"


def _trial_runs(db: Path) -> Counter:
    """Trial runs by MLflow status, a RUNNING one counted only once it logged a metric."""
    if not db.exists():
        return Counter()
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
            rows = connection.execute(
                "select r.status, exists(select 1 from metrics m where m.run_uuid = r.run_uuid) from runs r "
                "join tags t on t.run_uuid = r.run_uuid and t.key = 'sweeplab.role' and t.value = 'trial'")
            return Counter(status for status, measured in rows if status != "RUNNING" or measured)
    except sqlite3.OperationalError:
        return Counter()


def test_ctrl_c_then_only_the_same_sweep_resumes_and_retries_the_trial(tmp_path):
    """One study through a sweep's life (each sweeplab start costs seconds, so the steps share it):
    Ctrl-C mid-trial; reruns of a changed sweep refused, writing nothing; the same sweep resumes and
    runs the interrupted trial again, once, with its params; sweep.resume=force takes the new sweep."""
    args = ["sweep=digits_cnn", "trainer=smoke", "trainer.max_epochs=8", "sweep.n_trials=2", "pruner=none"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    with open(tmp_path / "out", "w") as out, open(tmp_path / "err", "w") as err:
        process = subprocess.Popen([SWEEPLAB, "sweep", *args], cwd=tmp_path, env=env, start_new_session=True,
                                   stdout=out, stderr=err)
        try:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:  # trial 0 done, trial 1 under way
                found = _trial_runs(tmp_path / "mlruns" / "mlflow.db")
                if found["FINISHED"] and found["RUNNING"]:
                    break
                time.sleep(0.1)
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the driver and its worker
            assert process.wait(timeout=120) == 130
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    output, errors = (tmp_path / "out").read_text(), (tmp_path / "err").read_text()
    assert "study digits_cnn: 1 complete, 0 pruned, 1 failed" in output and "no trial completed" not in output
    assert "interrupted; rerun the same command to resume" in errors
    # sweeplab's lines, not the libraries' (the store and the study were both created by this run)
    assert "Creating initial MLflow database tables" not in output + errors, errors
    assert "A new study created" not in output + errors, errors
    study = study_of(tmp_path)
    (stopped,) = [t for t in study.trials if t.state.name == "FAIL"]
    assert stopped.user_attrs["sweeplab.error"] == "interrupted"

    before = snapshot(tmp_path)
    for command, change, named in [
            ("sweep", NEW_LR, "space optimizer.lr: tag(log, interval(1e-4, 3e-2)) → tag(log, interval(1e-3, 1e-2))"),
            ("sweep", "sampler=random", "sampler TPESampler → RandomSampler"),
            ("worker", "trainer.max_epochs=3", "overrides trainer.max_epochs: 8 → 3")]:  # a worker checks too
        done = run_cli(command, *args, change, cwd=tmp_path)
        assert done.returncode == 2, f"{command} {change}: {done.stderr[-3000:]}"
        line = one_line(done)
        assert named in line and "sweep.study_name=NEW" in line and "sweep.resume=force" in line, line
        assert snapshot(tmp_path) == before, f"{command} {change} wrote something"
    # A param changing kind would fail every trial: not even force continues.
    kind = run_cli("sweep", *args, "sweep.params.optimizer.lr=choice(0.001, 0.01)", "sweep.resume=force",
                   cwd=tmp_path)
    assert kind.returncode == 2 and "not even with sweep.resume=force" in one_line(kind), kind.stderr[-3000:]
    assert snapshot(tmp_path) == before

    # The same sweep resumes (what does not define the study may change), the interrupted trial first.
    done = run_cli("sweep", *args, "sweep.max_consecutive_failures=3", "tracking.log_checkpoint=false",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming study digits_cnn: 1 finished, retrying 1 interrupted" in done.stdout
    study = study_of(tmp_path)
    assert Counter(t.state.name for t in study.trials) == Counter({"COMPLETE": 2, "FAIL": 1})
    retries = [t for t in study.trials if "sweeplab.retry_of" in t.user_attrs]
    (retry,) = retries  # exactly once, though the worker and the rerun's join could both queue it
    first_after = min(t.number for t in study.trials if t.number > stopped.number)
    assert retry.number == first_after and retry.user_attrs["sweeplab.retry_of"] == stopped.number
    assert retry.params == stopped.params and retry.state.name == "COMPLETE"
    (killed,) = [r for r in runs_of(tmp_path) if r.data.tags.get("optuna.trial_number") == str(stopped.number)]
    assert killed.info.status == "KILLED" and killed.data.tags["optuna.state"] == "FAIL"

    # sweep.resume=force: the new sweep's definition becomes the study's, recorded on the parent run.
    forced = run_cli("sweep", *args, NEW_LR, "sweep.resume=force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr[-3000:]
    study = study_of(tmp_path)
    recorded = json.loads(study.user_attrs["sweeplab.definition"])
    assert recorded["space"]["optimizer.lr"] == "tag(log, interval(1e-3, 1e-2))"
    parent = parent_of(tmp_path)
    assert parent.info.status == "FINISHED" and parent.info.run_id == before[1]["sweeplab.parent_run_id"]
    assert json.loads(parent.data.tags["sweeplab.definition"]) == recorded
    assert "1e-3, 1e-2" in json.loads(parent.data.tags["sweeplab.space"])["optimizer.lr"]
    (change,) = json.loads(parent.data.tags["sweeplab.forced"])
    assert change["from_trial"] == len(study.trials) and "optimizer.lr" in change["changes"][0]
    again = run_cli("sweep", *args, cwd=tmp_path)  # now the old sweep is the different one
    assert again.returncode == 2 and "interval(1e-3, 1e-2)) → tag(log, interval(1e-4" in one_line(again)
