"""What users do after a sweep, end to end: reproduce, compare, register, the UI."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from conftest import SWEEPLAB, free_port, run_cli, runs_in, store_uri


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A finished 3-trial digits sweep on 2 workers: (folder, parent run, its best trial's run id)."""
    cwd = tmp_path_factory.mktemp("swept")
    done = run_cli("sweep", "sweep=digits_cnn", "trainer=smoke", "sweep.n_trials=3", "pruner=none",
                   "sweep.workers=2", "sweep.register_as=digits_best", cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(store_uri(cwd))
    experiment = client.get_experiment_by_name("sweep-digits_cnn")
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`sweeplab.role` = 'sweep'")
    return cwd, parent, parent.data.tags["sweeplab.best_run_id"]


def test_reproduce_a_train_run_and_catch_an_altered_config(tmp_path):
    done = run_cli("train", "experiment=digits_cnn", "trainer=smoke", "tracking.log_model=false", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (original,) = runs_in(tmp_path, "digits_cnn")
    run_id = original.info.run_id
    again = run_cli("reproduce", run_id, "--check", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "val/acc" in again.stdout and "largest difference 0" in again.stdout
    copy = [r for r in runs_in(tmp_path, "digits_cnn") if r.info.run_id != run_id]
    assert len(copy) == 1 and copy[0].data.tags["sweeplab.reproduces"] == run_id
    # Alter the record: the run now says it was trained with another learning rate.
    (config,) = [p for p in (tmp_path / "mlruns").rglob("config.yaml") if run_id in str(p)]
    config.write_text(config.read_text().replace("lr: 0.001", "lr: 0.02"))
    changed = run_cli("reproduce", run_id, "--check", cwd=tmp_path)
    assert changed.returncode == 1
    assert "reproduce check failed" in changed.stderr


def test_reproduce_a_sweep_parent_runs_its_best_trial(swept):
    cwd, parent, best = swept
    done = run_cli("reproduce", parent.info.run_id, "--check", cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"reproducing run {best}" in done.stdout
    assert "Downloading artifacts" not in done.stderr   # MLflow's progress bar for one small file


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_compare_puts_the_best_trial_first(swept, fmt, tmp_path):
    cwd, parent, best = swept
    for target in ("digits_cnn", parent.info.run_id):
        done = run_cli("compare", target, "--top", "2", "--format", fmt, "--plot", str(tmp_path / "p.png"), cwd=cwd)
        assert done.returncode == 0, done.stderr[-3000:]
        if fmt == "json":
            first = json.loads(done.stdout)[0]["run_id"]
        elif fmt == "csv":
            first = done.stdout.splitlines()[1].split(",")[0]
        else:
            first = done.stdout.splitlines()[3].split()[1]   # after the rank
            assert "top 2 runs of" in done.stdout.splitlines()[0]
            assert done.stdout.splitlines()[1].startswith("(complete runs first, best first; then pruned ones")
        assert first == best
        assert (tmp_path / "p.png").stat().st_size > 1000


def test_register_and_load_by_alias(swept):
    cwd, parent, best = swept
    mlflow.set_tracking_uri(store_uri(cwd))
    client = MlflowClient(store_uri(cwd))
    # sweep.register_as registered the best trial when the sweep ended.
    assert client.get_model_version_by_alias("digits_best", "champion").run_id == best
    done = run_cli("register", parent.info.run_id, "digits_champion", cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "WARNING" not in done.stderr   # registered as the logged model it is, not by a fallback
    model = mlflow.pyfunc.load_model("models:/digits_champion@champion")
    assert model.predict(np.zeros((3, 1, 8, 8), np.float32)).shape == (3, 10)
    assert client.get_run(parent.info.run_id).data.tags["sweeplab.registered_model"] == "digits_champion/1"
    assert client.get_model_version_by_alias("digits_champion", "champion").run_id == best


def test_bad_ids_exit_2(swept):
    cwd, _, _ = swept
    foreign = MlflowClient(store_uri(cwd)).create_run("0").info.run_id  # a run sweeplab did not write
    for args, message in ((["reproduce", "0" * 32], "no such run"), (["register", "f" * 32, "x"], "no such run"),
                          (["reproduce", foreign], "not recorded by sweeplab"),
                          (["compare", "nope"], "no sweep, sweep run or experiment named 'nope'"),
                          (["compare", foreign], "not a sweep's parent run")):
        done = run_cli(*args, cwd=cwd)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and message in lines[0], (args, done.stderr)


def test_compare_fits_100_columns_and_labels_its_plot(swept, tmp_path):
    cwd, parent, best = swept
    done = run_cli("compare", "digits_cnn", "--plot", str(tmp_path / "p.svg"), cwd=cwd, env={"COLUMNS": "100"})
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert max(map(len, lines)) <= 100, "\n".join(lines)
    assert best in lines[3] and "optimizer.lr" in done.stdout   # wrapped, not cut: every column is there
    # Matplotlib writes each text of an SVG figure as a comment beside its glyphs.
    texts = set(re.findall(r"<!-- (.*?) -->", (tmp_path / "p.svg").read_text()))
    assert {"lowest", "highest", "val/acc", "optimizer.lr"} <= texts
    assert any(t.startswith("value on each axis") for t in texts) and any(t.startswith("parameter") for t in texts)


def server_session(parent_pid: int) -> list[int]:
    """The processes of the server a sweeplab command started: its child with a session of its own, and theirs."""
    rows = [tuple(map(int, line.split())) for line in
            subprocess.run(["ps", "-eo", "pid=,ppid=,sid="], capture_output=True, text=True).stdout.splitlines()]
    sessions = {pid for pid, ppid, sid in rows if ppid == parent_pid and sid == pid}
    return [pid for pid, _, sid in rows if sid in sessions]


def wait_for_line(log, marker: str, timeout: float = 120) -> list[str]:
    """The lines written to `log` up to the first holding `marker`, as soon as it is there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = log.read_text().splitlines()
        found = [i for i, line in enumerate(lines) if marker in line]
        if found:
            return lines[:found[0] + 1]
        time.sleep(0.2)
    raise AssertionError(f"no line with {marker!r} in {timeout} s: {log.read_text()[-3000:]}")


def stop_group(process: subprocess.Popen, sig=signal.SIGINT) -> None:
    """Stop a command started with start_new_session as the terminal's Ctrl-C would; then, whatever the
    outcome, kill anything left of its process group and of its server's."""
    servers = server_session(process.pid)
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=60)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        pass
    finally:
        for pid in {process.pid, *servers}:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def test_ui_says_starting_then_its_url_once_the_server_answers_and_stops(swept, tmp_path):
    cwd, parent, _ = swept
    port = free_port()
    # --open hands the URL to Python's webbrowser, which runs $BROWSER: here a script that notes it.
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" > {tmp_path / "opened.txt"}\n')
    browser.chmod(0o755)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}, "BROWSER": str(browser)}
    log = tmp_path / "ui.log"
    with open(log, "w") as out:
        server = subprocess.Popen([SWEEPLAB, "ui", "--port", str(port), "--open"], cwd=cwd, env=env,
                                  stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    # The sweep's experiment, in the UI's "Model training" view (MLflow 3 opens its GenAI view otherwise).
    url = f"http://127.0.0.1:{port}/#/experiments/{parent.info.experiment_id}?workflowType=machine_learning"
    try:
        lines = wait_for_line(log, url)
        assert lines[0].startswith("starting the MLflow UI for sqlite:")   # at once, before the server is up
        # The URL is printed once the server answers: no retry here.
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).status == 200
        # One local user's server: one process serving, and its parent; no job runner, no huey consumers.
        assert len(server_session(server.pid)) <= 2, server_session(server.pid)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/2.0/mlflow/runs/search", method="POST",
            data=json.dumps({"experiment_ids": [parent.info.experiment_id]}).encode(),
            headers={"Content-Type": "application/json"})
        runs = json.loads(urllib.request.urlopen(request, timeout=10).read())["runs"]
        assert parent.info.run_id in {r["info"]["run_id"] for r in runs} and len(runs) >= 4
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (tmp_path / "opened.txt").exists():
            time.sleep(0.5)
        assert (tmp_path / "opened.txt").read_text().strip() == url
    finally:
        stop_group(server)
    output = log.read_text()
    # Starlette's, once per server process; a server stopped mid-request would print a traceback.
    assert not [line for line in output.splitlines() if "DeprecationWarning:" in line or "Traceback" in line], output[-3000:]
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # nothing listens any more


def test_dashboard_opens_on_the_sweeps_own_study_page(swept, tmp_path):
    cwd, _, _ = swept
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    log = tmp_path / "dashboard.log"
    with open(log, "w") as out:
        server = subprocess.Popen([SWEEPLAB, "dashboard", "sweep=digits_cnn", "--port", str(port)], cwd=cwd, env=env,
                                  stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        lines = wait_for_line(log, "Ctrl-C stops it")
        assert lines[0] == "starting optuna-dashboard for study digits_cnn..."
        page = re.search(r"(http://127\.0\.0\.1:\d+/dashboard/studies/(\d+))", lines[-1])
        assert page, lines
        studies = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5).read())
        (study,) = studies["study_summaries"]
        assert (study["study_name"], str(study["study_id"])) == ("digits_cnn", page[2])
        assert urllib.request.urlopen(page[1], timeout=5).status == 200
    finally:
        stop_group(server, signal.SIGTERM)
