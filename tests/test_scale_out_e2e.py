"""Many machines, one study: `sweeplab sweep` and `sweeplab worker`s started at the same moment, each
in a folder of its own (as on separate machines), sharing a PostgreSQL study and logging to a real
`mlflow server` on PostgreSQL. The storage URL carries a password that must never show up."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient

from conftest import SWEEPLAB, free_port, run_cli

PASSWORD = "S3cretPW"  # trust auth takes any password: this one only has to stay hidden
SMOKE = ["sweep=digits_cnn", "trainer=smoke"]
MLFLOW = str(Path(sys.executable).parent / "mlflow")


def new_database(postgres_url: str, prefix: str, password: str | None = None) -> str:
    """A fresh database on the fixture's server; its URL, with `password` in it when given."""
    import sqlalchemy
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    engine = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    url = make_url(postgres_url).set(database=name, password=password)
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def mlflow_server(postgres_url, tmp_path_factory):
    """`mlflow server` on a PostgreSQL backend, artifacts proxied to a folder; killed with its children."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = open(folder / "server.log", "w")
    server = subprocess.Popen(
        [MLFLOW, "server", "--backend-store-uri", new_database(postgres_url, "mlflow"),
         "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        # No job runner (GenAI jobs): five fewer processes on the test machine.
        env={**{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
             "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"mlflow server did not start:\n{(folder / 'server.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield uri
    finally:
        _kill_group(server, signal.SIGTERM)
        log.close()


def _kill_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=5)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)


def start_together(commands: dict[str, list[str]], root: Path, tracking_uri: str, timeout: float = 300) -> dict:
    """Start every command at once (each a process of its own, forked within milliseconds of the others), each in
    root/<name>; their (returncode, stdout + stderr) by name."""
    for name in commands:
        (root / name).mkdir()

    def run(name: str) -> tuple[int, str]:
        done = run_cli(*commands[name], cwd=root / name, env={"MLFLOW_TRACKING_URI": tracking_uri}, timeout=timeout)
        return done.returncode, done.stdout + done.stderr

    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        return dict(zip(commands, pool.map(run, commands)))


def check_one_sweep(storage: str, study_name: str, tracking_uri: str, n_trials: int) -> tuple[optuna.Study, list]:
    """Exactly one study with n_trials finished, one parent run, one child run per trial under it."""
    assert optuna.get_all_study_names(storage) == [study_name]
    study = optuna.load_study(study_name=study_name, storage=storage)
    found = Counter(t.state.name for t in study.trials)
    assert found["COMPLETE"] + found["PRUNED"] == n_trials and len(study.trials) == n_trials, found
    assert sorted(t.number for t in study.trials) == list(range(n_trials))
    client = MlflowClient(tracking_uri)
    (experiment,) = [e for e in client.search_experiments() if e.name == f"sweep-{study_name}"]
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    (parent,) = [r for r in runs if r.data.tags.get("sweeplab.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("sweeplab.role") == "trial"]
    assert len(runs) == 1 + n_trials
    assert study.user_attrs["sweeplab.parent_run_id"] == parent.info.run_id
    assert parent.info.status == "FINISHED"
    assert json.loads(parent.data.tags["sweeplab.trials"])["finished"] == n_trials  # the summary has every trial
    assert all(r.data.tags.get("mlflow.parentRunId") == parent.info.run_id for r in children)
    assert sorted(int(r.data.tags["optuna.trial_number"]) for r in children) == list(range(n_trials))
    assert {r.data.tags["optuna.state"] for r in children} <= {"COMPLETE", "PRUNED"}
    # Artifacts went to the server, not to a folder of whichever machine created the experiment.
    assert all(r.info.artifact_uri.startswith("mlflow-artifacts:") for r in runs), [r.info.artifact_uri for r in runs]
    return study, runs


def assert_no_password(runs, outputs: dict, root: Path, tracking_uri: str) -> None:
    for run in runs:
        for kind, values in (("param", run.data.params), ("tag", run.data.tags)):
            leaked = [key for key, value in values.items() if PASSWORD in value]
            assert not leaked, f"password in {kind}s {leaked} of run {run.info.run_name}"
    client = MlflowClient(tracking_uri)
    parent = next(r for r in runs if r.data.tags.get("sweeplab.role") == "sweep")
    child = next(r for r in runs if r.data.tags.get("sweeplab.role") == "trial")
    for run in (parent, child):  # the text artifacts at the top: overrides.txt, config.yaml, trials.csv
        for item in client.list_artifacts(run.info.run_id):
            if not item.is_dir and item.path.endswith((".txt", ".yaml", ".json", ".csv", ".patch")):
                text = Path(client.download_artifacts(run.info.run_id, item.path, str(root))).read_text()
                assert PASSWORD not in text, f"password in artifact {item.path} of run {run.info.run_name}"
    for name, (_, output) in outputs.items():
        assert PASSWORD not in output, f"password in the output of {name}"
    for log in root.rglob("*.log"):
        assert PASSWORD not in log.read_text(errors="replace"), f"password in {log}"


def test_driver_and_workers_started_at_once_share_one_study(tmp_path, postgres_url, mlflow_server):
    """The driver and two `sweeplab worker`s start at the same moment: any of them may create the study."""
    storage = new_database(postgres_url, "optuna", password=PASSWORD)
    args = [*SMOKE, "sweep.n_trials=6", f"sweep.storage={storage}", "sweep.study_name=together"]
    outputs = start_together({"driver": ["sweep", *args], "worker-b": ["worker", *args],
                              "worker-c": ["worker", *args]}, tmp_path, mlflow_server)
    for name, (code, output) in outputs.items():
        assert code == 0, f"{name} exited {code}:\n{output[-3000:]}"
    study, runs = check_one_sweep(storage, "together", mlflow_server, 6)
    assert len({t.user_attrs["sweeplab.worker"] for t in study.trials}) >= 2  # the joiners did work
    assert "[6/6]" in outputs["driver"][1]  # the driver waited for the trials running elsewhere
    assert_no_password(runs, outputs, tmp_path, mlflow_server)


def test_workers_alone_create_one_study_and_one_parent(tmp_path, postgres_url, mlflow_server):
    """No driver (a SLURM array, a Kubernetes Job): workers started together make one study and one parent
    run, and the last one out records the summary and closes the parent."""
    storage = new_database(postgres_url, "optuna", password=PASSWORD)
    args = [*SMOKE, "sweep.n_trials=4", f"sweep.storage={storage}", "sweep.study_name=alone",
            "sweep.register_as=alone_best"]
    outputs = start_together({f"task-{i}": ["worker", *args] for i in range(3)}, tmp_path, mlflow_server)
    for name, (code, output) in outputs.items():
        assert code == 0, f"{name} exited {code}:\n{output[-3000:]}"
    study, runs = check_one_sweep(storage, "alone", mlflow_server, 4)
    assert sum("summary recorded on parent run" in output for _, output in outputs.values()) >= 1
    # sweep.register_as: whichever worker finished the study registered the best trial's model, once.
    client = MlflowClient(mlflow_server)
    (version,) = client.search_model_versions("name = 'alone_best'")
    (parent,) = [r for r in runs if r.data.tags.get("sweeplab.role") == "sweep"]
    assert version.run_id == parent.data.tags["sweeplab.best_run_id"]
    assert client.get_model_version_by_alias("alone_best", "champion").version == version.version
    assert_no_password(runs, outputs, tmp_path, mlflow_server)


@pytest.mark.parametrize("kind", ["postgresql-empty", "postgresql", "journal"])
def test_processes_joining_at_the_same_instant_make_one_study_and_one_parent(tmp_path, postgres_url,
                                                                             mlflow_server, kind):
    """Eight processes released by one barrier call join() together: exactly one parent run.

    The end-to-end tests above start whole `sweeplab` processes, whose imports spread their arrival
    over seconds; here the race is as tight as it gets, so a missing lock shows every time.
    postgresql-empty: Optuna's tables are made by the racers too; postgresql: they exist already,
    so the racers leave the storage's opening together and only the parent run can collide.
    """
    from sweeplab.config import compose_with_choices
    from sweeplab.sweep.join import join
    from sweeplab.sweep.settings import read_settings

    storage = (new_database(postgres_url, "optuna", password=PASSWORD) if kind.startswith("postgresql")
               else str(tmp_path / "optuna.journal"))
    if kind == "postgresql":
        optuna.storages.RDBStorage(storage).engine.dispose()
    name = f"instant_{kind.replace('-', '_')}"
    overrides = [*SMOKE, f"sweep.storage={storage}", f"sweep.study_name={name}"]
    settings = read_settings(*compose_with_choices(overrides, []))
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(8), context.Queue()

    def one() -> None:
        barrier.wait(timeout=60)
        try:
            results.put(join(settings, overrides, mlflow_server).parent_run_id)
        except BaseException as e:
            results.put(f"error: {type(e).__name__}: {e}")

    processes = [context.Process(target=one) for _ in range(8)]
    try:
        for process in processes:
            process.start()
        found = [results.get(timeout=120) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
    assert not [f for f in found if f.startswith("error")], found
    assert len(set(found)) == 1, found
    if kind == "journal":
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        storage = JournalStorage(JournalFileBackend(storage))
    assert optuna.get_all_study_names(storage) == [name]
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name(f"sweep-{name}")
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_id for r in runs] == found[:1]


def test_worker_with_bad_input_exits_2_and_writes_nothing(tmp_path, postgres_url):
    """An unreachable tracking server: one line, exit 2, and no study created in the storage."""
    storage = new_database(postgres_url, "optuna")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run([SWEEPLAB, "worker", *SMOKE, f"sweep.storage={storage}"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "unreachable" in lines[0], done.stderr
    assert not (tmp_path / "mlruns").exists()
    import sqlalchemy

    engine = sqlalchemy.create_engine(storage)
    try:
        assert sqlalchemy.inspect(engine).get_table_names() == []  # not even Optuna's tables
    finally:
        engine.dispose()
