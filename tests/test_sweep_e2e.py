"""`sweeplab sweep` end to end: installed command, worker processes, real Optuna and MLflow stores."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient

from conftest import SWEEPLAB, free_port, run_cli, store_uri
from sweeplab.tracking.ui_view import sweep_view_key

SMOKE = ["sweep=digits_cnn", "trainer=smoke"]


def study_of(cwd: Path, storage: str | None = None, name: str = "digits_cnn") -> optuna.Study:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = storage or JournalStorage(JournalFileBackend(str(cwd / "mlruns" / "optuna.journal")))
    return optuna.load_study(study_name=name, storage=storage)


def mlflow_runs(cwd: Path, experiment: str = "sweep-digits_cnn"):
    client = MlflowClient(store_uri(cwd))
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id]) if found else []
    parents = [r for r in runs if r.data.tags.get("sweeplab.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("sweeplab.role") == "trial"]
    return client, parents, children


def states(study: optuna.Study) -> Counter:
    return Counter(t.state.name for t in study.get_trials())


def test_every_trial_pruned_gives_exact_counts(tmp_path):
    # The progress bar asked for here must stay out of the worker logs.
    done = run_cli("sweep", *SMOKE, "sweep.n_trials=4", "pruner=threshold", "sweep.pruner.lower=2.0",
                   "trainer.enable_progress_bar=true", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert states(study_of(tmp_path)) == Counter({"PRUNED": 4})
    client, parents, children = mlflow_runs(tmp_path)
    assert len(parents) == 1 and len(children) == 4
    for run in children:
        assert run.info.status == "FINISHED"
        assert run.data.tags["optuna.state"] == "PRUNED" and run.data.tags["sweeplab.stopped"] == "PRUNED"
        # Stopped at once: one validation epoch of two, no test.
        assert len(client.get_metric_history(run.info.run_id, "val/acc")) == 1
        assert "test/acc" not in run.data.metrics
        # Pruned at a glance in the UI's run list, whose first column is the name.
        assert re.fullmatch(r"trial-\d+ \[pruned\] .+", run.info.run_name), run.info.run_name
    assert parents[0].data.metrics["trials/pruned"] == 4
    assert "4 pruned" in done.stdout
    # The closing hint: `sweeplab ui`, and the sweep's view of its trials in the UI's "Model training" view.
    parent = parents[0]
    assert "sweeplab ui" in done.stdout and "mlflow ui --backend-store-uri" not in done.stdout
    assert (f"http://127.0.0.1:5000/#/experiments/{parent.info.experiment_id}/runs?viewStateShareKey="
            f"{sweep_view_key('digits_cnn')}&workflowType=machine_learning") in done.stdout
    logs = [p.read_text() for p in (tmp_path / "mlruns" / "sweep-logs" / "digits_cnn").glob("worker-*.log")]
    assert logs and not any("it/s" in log or "Epoch 0" in log for log in logs)


def test_the_last_epoch_is_reported_but_never_pruned(tmp_path):
    # Every value is below the threshold; with one epoch, that epoch is the last: the trial completes.
    done = run_cli("sweep", *SMOKE, "trainer.max_epochs=1", "sweep.n_trials=2", "pruner=threshold",
                   "sweep.pruner.lower=2.0", "tracking.log_model=false", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    study = study_of(tmp_path)
    assert states(study) == Counter({"COMPLETE": 2})
    for trial in study.trials:
        assert list(trial.intermediate_values) == [1] and trial.value == trial.intermediate_values[1]


def test_a_grid_smaller_than_n_trials_runs_each_point_once(tmp_path):
    done = run_cli("sweep", *SMOKE, "sampler=grid", "~sweep.params", '+sweep.params={model.dropout: "choice(0.1, 0.2)"}',
                   "sweep.n_trials=4", "sweep.workers=2", "tracking.log_model=false", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sweep.n_trials=4: the grid has 2 points, so 2 trials" in done.stdout
    study = study_of(tmp_path)
    assert sorted(t.params["model.dropout"] for t in study.trials) == [0.1, 0.2]
    assert states(study) == Counter({"COMPLETE": 2})


def test_two_workers_on_sqlite_match_optuna_and_mlflow(tmp_path):
    storage = f"sqlite:///{tmp_path / 'S' / 'optuna.db'}"
    done = run_cli("sweep", *SMOKE, "sweep.n_trials=8", "sweep.workers=2", f"sweep.storage={storage}",
                   "tracking.artifact_location=arts", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    study = study_of(tmp_path, storage)
    found = states(study)
    assert found["COMPLETE"] + found["PRUNED"] == 8 and found["RUNNING"] == 0
    assert len({t.user_attrs["sweeplab.worker"] for t in study.trials}) == 2
    # Every trial's worker recorded its Optuna heartbeat (table of Optuna's RDB schema), without which
    # a trial of a worker that died on another host is never failed and retried.
    with sqlite3.connect(tmp_path / "S" / "optuna.db") as connection:
        beating = {n for (n,) in connection.execute(
            "select t.number from trials t join trial_heartbeats h on h.trial_id = t.trial_id")}
    assert beating == {t.number for t in study.trials}
    client, (parent,), children = mlflow_runs(tmp_path)
    assert len(children) >= 8
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in children)
    assert all(r.info.artifact_uri.startswith((tmp_path / "arts").as_uri()) for r in [parent, *children])
    by_number = {int(r.data.tags["optuna.trial_number"]): r for r in children}
    assert set(by_number) == {t.number for t in study.trials}
    for trial in study.trials:
        assert by_number[trial.number].data.tags["optuna.state"] == trial.state.name
        assert by_number[trial.number].data.params["optimizer.lr"] == repr(trial.params["optimizer.lr"])
    assert parent.info.status == "FINISHED" and study.user_attrs["sweeplab.parent_run_id"] == parent.info.run_id
    assert parent.data.tags["sweeplab.best_trial"] == str(study.best_trial.number)
    assert parent.data.metrics["best/val/acc"] == study.best_value
    # The parent's row in the UI shows the best value under the sweep's metric, logged as trials completed.
    assert parent.data.metrics["val/acc"] == study.best_value
    history = sorted(client.get_metric_history(parent.info.run_id, "val/acc"), key=lambda m: m.step)
    assert len(history) >= found["COMPLETE"] and all(a.value <= b.value for a, b in zip(history, history[1:]))
    # The printed link's view, stored on the experiment as the MLflow UI's "Share" button stores one:
    # exactly the trial runs, best first, val/acc a column.
    experiment = client.get_experiment(parent.info.experiment_id)
    key = sweep_view_key("digits_cnn")
    assert f"?viewStateShareKey={key}&" in done.stdout
    saved = json.loads(experiment.tags[f"mlflow.sharedViewState.{key}"])   # the UI's saved-view envelope
    assert saved["name"] == "sweep digits_cnn: trials by val/acc" and isinstance(saved["createdAt"], int)
    view = json.loads(saved["state"])
    shown = client.search_runs([experiment.experiment_id], view["searchFilter"])
    assert {r.info.run_id for r in shown} == {r.info.run_id for r in children}
    assert (view["orderByKey"], view["orderByAsc"]) == ("metrics.`val/acc`", False)
    assert "metrics.`val/acc`" in view["selectedColumns"] and view["columnOrder"] == ["metrics.`val/acc`"]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert {"plots/optimization_history.png", "plots/parallel_coordinate.png",
            "plots/intermediate_values.png"} <= artifacts
    assert "trials.csv" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    # Optuna's own CLI sees the same trials as MLflow's child runs.
    listed = subprocess.run([str(Path(sys.executable).parent / "optuna"), "trials", "--study-name",
                             "digits_cnn", "--storage", storage, "-f", "json"],
                            capture_output=True, text=True, check=True)
    trials = json.loads(listed.stdout)
    assert {(t["number"], t["state"]) for t in trials} == \
        {(n, r.data.tags["optuna.state"]) for n, r in by_number.items()}
    # Rerunning a finished sweep reports and exits at once, reusing the parent run.
    again = run_cli("sweep", *SMOKE, "sweep.n_trials=8", "sweep.workers=2", f"sweep.storage={storage}",
                    "tracking.artifact_location=arts", cwd=tmp_path)
    assert again.returncode == 0 and parent.info.run_id in again.stdout
    # Nothing on the terminal or in the logs about sweeplab's own use of Optuna (heartbeats) or MLflow.
    logs = [p.read_text() for p in (tmp_path / "mlruns" / "sweep-logs" / "digits_cnn").glob("worker-*.log")]
    assert not any("Warning" in text for text in [done.stderr, again.stderr, *logs]), done.stderr[-3000:]
    assert len(study_of(tmp_path, storage).trials) == len(study.trials)
    assert len(mlflow_runs(tmp_path)[1]) == 1


def _running_trial_has_metric(db: Path) -> bool:
    if not db.exists():
        return False
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
            return connection.execute(
                "select 1 from runs r join tags t on t.run_uuid = r.run_uuid and t.key = 'sweeplab.role' "
                "and t.value = 'trial' join metrics m on m.run_uuid = r.run_uuid "
                "where r.status = 'RUNNING' limit 1").fetchone() is not None
    except sqlite3.OperationalError:
        return False


def test_sigkill_mid_trial_then_resume(tmp_path):
    args = ["sweep=digits_cnn", "trainer=cpu", "trainer.max_epochs=3", "trainer.limit_train_batches=40",
            "sweep.n_trials=3", "pruner=none"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    process = subprocess.Popen([SWEEPLAB, "sweep", *args], cwd=tmp_path, env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _running_trial_has_metric(tmp_path / "mlruns" / "mlflow.db"):
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGKILL)  # the driver and its worker, mid-trial
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    killed = [t for t in study_of(tmp_path).trials if t.state.name == "RUNNING"]
    assert len(killed) == 1
    done = run_cli("sweep", *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    study = study_of(tmp_path)
    found = states(study)
    assert found["COMPLETE"] + found["PRUNED"] == 3 and found["RUNNING"] == 0
    assert study.trials[killed[0].number].state.name == "FAIL"
    retry = [t for t in study.trials if t.user_attrs.get("sweeplab.retry_of") == killed[0].number]
    assert len(retry) == 1 and retry[0].params == killed[0].params
    _, parents, children = mlflow_runs(tmp_path)
    assert not [r for r in parents + children if r.info.status == "RUNNING"]
    (dead,) = [r for r in children if r.data.tags["optuna.trial_number"] == str(killed[0].number)]
    assert dead.info.status == "KILLED" and dead.data.tags["optuna.state"] == "FAIL"


def _sweeplab_processes_in(cwd: Path) -> list[int]:
    """Live sweeplab processes (driver or workers) whose working directory is `cwd`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if (entry.name.isdigit() and Path(entry / "cwd").resolve() == cwd.resolve()
                    and b"sweeplab" in (entry / "cmdline").read_bytes()
                    and (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"):
                found.append(int(entry.name))
        except OSError:
            pass    # it ended while we looked, or is not ours to read
    return found


def test_sigterm_to_the_driver_stops_its_workers_like_ctrl_c(tmp_path):
    args = ["sweep=digits_cnn", "trainer=cpu", "trainer.max_epochs=3", "trainer.limit_train_batches=40",
            "sweep.n_trials=4", "sweep.workers=2", "pruner=none"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    with open(tmp_path / "err", "w") as err:
        process = subprocess.Popen([SWEEPLAB, "sweep", *args], cwd=tmp_path, env=env, start_new_session=True,
                                   stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not _running_trial_has_metric(tmp_path / "mlruns" / "mlflow.db"):
                time.sleep(0.2)
            process.send_signal(signal.SIGTERM)   # the driver alone, as `kill PID` does
            assert process.wait(timeout=120) == 130
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and _sweeplab_processes_in(tmp_path):
                time.sleep(0.2)
            assert not _sweeplab_processes_in(tmp_path)   # no worker left training
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            for pid in _sweeplab_processes_in(tmp_path):
                os.kill(pid, signal.SIGKILL)
    assert "interrupted; rerun the same command to resume" in (tmp_path / "err").read_text()
    study = study_of(tmp_path)
    stopped = [t for t in study.trials if t.state.name == "FAIL"]
    assert stopped and all(t.user_attrs["sweeplab.error"] == "interrupted" for t in stopped), \
        [(t.number, t.user_attrs.get("sweeplab.error")) for t in stopped]
    assert not [t for t in study.trials if t.state.name == "RUNNING"]


def test_nan_trials_fail_alone_and_too_many_failures_stop(tmp_path):
    space = "sweep.params.optimizer.lr=choice(0.01, 1e30)"
    done = run_cli("sweep", *SMOKE, "optimizer=sgd", space, "sampler=random", "sweep.n_trials=2",
                   "sweep.max_consecutive_failures=10", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    study = study_of(tmp_path)
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    assert failed and all(t.params["optimizer.lr"] == 1e30 for t in failed)
    assert all(t.params["optimizer.lr"] == 0.01 for t in study.trials if t.state.name == "COMPLETE")
    _, _, children = mlflow_runs(tmp_path)
    failed_runs = [run for run in children if run.data.tags["optuna.state"] == "FAIL"]
    assert len(failed_runs) == len(failed)   # each failed trial's run is found and marked
    for run in failed_runs:
        assert run.info.status == "FAILED" and "non-finite" in run.data.tags["sweeplab.error"]
    stopped = run_cli("sweep", *SMOKE, "optimizer=sgd", "sweep.params.optimizer.lr=choice(1e30)",
                      "sweep.study_name=all_nan", "sweep.max_consecutive_failures=2", cwd=tmp_path)
    assert stopped.returncode == 1
    assert "the last 2 trials failed in a row" in stopped.stderr
    assert states(study_of(tmp_path, name="all_nan")) == Counter({"FAIL": 2})


@pytest.mark.parametrize("args, message", [
    (["sweep=nope"], "available in 'sweep': "),
    (["sampler=nope"], "available in 'sampler'"),
    (["sweep.sampler._target_=optuna.samplers.NopeSampler"], "sweep.sampler._target_"),
    (["pruner=none", "+sweep.pruner.reduction_factor=4"], "sweep.pruner: NopPruner() takes no arguments (given: "
                                                           "reduction_factor); a pruner= or sampler= group choice"),
    (["sweep.params.optimizer.lr=interval(1)"], "sweep.params.optimizer.lr"),
    (["sweep.params.optimizer.lr=interval(0.1, 0.01)"], "sweep.params.optimizer.lr"),
    (["sweep.params.optimizer.lr=tag(log, interval(0, 0.1))"], "low > 0"),
    (["sweep.params.model.nope=choice(1, 2)"], "model.nope"),
    (["sweep.params.optimizer=choice(adam, nope)"], "sweep.params.optimizer"),
    (["sweep.storage=postgresql+psycopg2://sweeplab@127.0.0.1:{port}/none"], "unreachable"),
    (["sweep.storage=redis://x"], "sweep.storage"),
    (["sweep.n_trials=0"], "sweep.n_trials"),
    (["sweep.resume=always"], "sweep.resume=always: use auto"),
    (["data.train_size=???"], "data.train_size: not set (??? in the config); give it on the command line"),
])
def test_bad_sweep_input_exits_2_and_writes_nothing(tmp_path, args, message):
    args = [a.format(port=free_port()) for a in args]
    base = [] if args[0].startswith("sweep=") else ["sweep=digits_cnn"]
    done = run_cli("sweep", *base, *args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sweeplab: error:") and message in lines[0], done.stderr
    assert not (tmp_path / "mlruns").exists()



MINIMAL_SWEEP = """\
# @package _global_
defaults:
  - override /experiment: digits_cnn
sweep:
  metric: val/acc
  direction: maximize
  n_trials: 2
  workers: 1
  params:
    optimizer.lr: tag(log, interval(1e-4, 1e-2))
"""


def test_a_minimal_sweep_file_gets_every_default_and_takes_sweep_storage(tmp_path):
    # A file of one's own naming five keys: the rest (max_consecutive_failures, storage, sampler, pruner, ...)
    # come from conf/sweep_defaults.yaml, and sweep.storage=URL overrides a key the file never names.
    (tmp_path / "conf" / "sweeps").mkdir(parents=True)
    (tmp_path / "conf" / "sweeps" / "mine.yaml").write_text(MINIMAL_SWEEP)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    done = run_cli("sweep", "--config-dir", "conf", "sweep=mine", "trainer=smoke", f"sweep.storage={storage}",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    study = study_of(tmp_path, storage, name="mine")
    assert len(study.trials) == 2 and all(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials)
    assert not (tmp_path / "mlruns" / "optuna.journal").exists()
    _, (parent,), children = mlflow_runs(tmp_path, "sweep-mine")
    assert len(children) == 2
    assert parent.data.params["sweep.sampler"] == "optuna.samplers.TPESampler"
    assert parent.data.params["sweep.pruner"] == "optuna.pruners.SuccessiveHalvingPruner"
