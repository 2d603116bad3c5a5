"""Passwords in storage and tracking URLs never reach MLflow, output, logs or error messages."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient

from conftest import free_port, postgres_server, run_cli, store_uri
from sweeplab.secrets import hide_passwords

SECRET = "S3cretPW"
SMOKE_SWEEP = ["sweep=digits_cnn", "trainer=smoke", "sweep.n_trials=2"]


@pytest.mark.parametrize("text, expected", [
    ("postgresql+psycopg2://u:pw@h/db", "postgresql+psycopg2://u:***@h/db"),
    ("postgresql+psycopg2://u:pw@h:5432/db", "postgresql+psycopg2://u:***@h:5432/db"),
    ("mysql://root:pw@127.0.0.1:3306/optuna", "mysql://root:***@127.0.0.1:3306/optuna"),
    ("http://u:pw@mlflow-host:5000", "http://u:***@mlflow-host:5000"),
    ("https://u:pw@mlflow-host/api/2.0?a=1", "https://u:***@mlflow-host/api/2.0?a=1"),
    # special characters: percent-encoded (as SQLAlchemy wants them) or raw
    ("postgresql://u:p%40ss@h/db", "postgresql://u:***@h/db"),
    ("postgresql://u:p%2Fs%23s%3A@h/db", "postgresql://u:***@h/db"),
    ("postgresql://u:p@ss@h:5432/db", "postgresql://u:***@h:5432/db"),
    ("postgresql://u:p/s#s?@h/db", "postgresql://u:***@h/db"),
    ("postgresql://u:1234@h/db", "postgresql://u:***@h/db"),
    ("postgresql://u:@h/db", "postgresql://u:***@h/db"),
    # a scheme SQLAlchemy cannot parse is masked all the same
    ("git.ssh-x://u:pw@h/repo", "git.ssh-x://u:***@h/repo"),
    # inside longer texts: a shell command line, a JSON list of overrides, a sentence
    ("sweeplab sweep sweep=digits_cnn 'sweep.storage=postgresql+psycopg2://postgres:pw@10.0.0.1:5432/s' x=1",
     "sweeplab sweep sweep=digits_cnn 'sweep.storage=postgresql+psycopg2://postgres:***@10.0.0.1:5432/s' x=1"),
    (json.dumps(["sweep=digits_cnn", "sweep.storage=postgresql+psycopg2://u:pw@h/db", "sweep.n_trials=2"]),
     json.dumps(["sweep=digits_cnn", "sweep.storage=postgresql+psycopg2://u:***@h/db", "sweep.n_trials=2"])),
    ("sweep.storage=postgresql://u:pw@h/db is unreachable (timeout).",
     "sweep.storage=postgresql://u:***@h/db is unreachable (timeout)."),
    # several URLs, with and without space between them
    ("a=mysql://u:pw1@h/db b=http://v:pw2@k:5000 c=postgresql://w@h/db",
     "a=mysql://u:***@h/db b=http://v:***@k:5000 c=postgresql://w@h/db"),
    ("postgresql://u:pw1@h/db,postgresql://u:pw2@k/db", "postgresql://u:***@h/db,postgresql://u:***@k/db"),
])
def test_hide_passwords_masks_every_password(text, expected):
    assert hide_passwords(text) == expected
    assert hide_passwords(expected) == expected


@pytest.mark.parametrize("text", [
    "postgresql+psycopg2://postgres@127.0.0.1:5432/sweeplab",
    "sqlite:////tmp/mlruns/mlflow.db",
    "http://127.0.0.1:5000",
    "http://h:5000/path?email=a@b.c",
    "mailto user@example.com, see https://example.com/x",
    "optimizer.lr=0.001 data.batch_size=64",
    "",
])
def test_hide_passwords_leaves_text_without_passwords_unchanged(text):
    assert hide_passwords(text) == text


def leaks(cwd: Path, secret: str, *outputs: str, experiments: tuple[str, ...]) -> list[str]:
    """Everywhere `secret` shows up: MLflow params and tags, any file under cwd (artifacts, logs, the
    MLflow database), the command's output."""
    found = []
    client = MlflowClient(store_uri(cwd))
    for name in experiments:
        experiment = client.get_experiment_by_name(name)
        assert experiment is not None, name
        for run in client.search_runs([experiment.experiment_id]):
            for kind, values in (("param", run.data.params), ("tag", run.data.tags)):
                found += [f"{run.info.run_name}: {kind} {k}" for k, v in values.items() if secret in v]
    found += [f"file {p.relative_to(cwd)}" for p in sorted(cwd.rglob("*"))
              if p.is_file() and secret.encode() in p.read_bytes()]
    found += [f"output {i}" for i, text in enumerate(outputs) if secret in text]
    return found


def test_sweep_never_shows_the_storage_password(tmp_path, postgres_url):
    storage = postgres_url.replace("://postgres@", f"://postgres:{SECRET}@")
    masked = postgres_url.replace("://postgres@", "://postgres:***@")
    assert SECRET in storage  # trust auth: the server accepts the password and ignores it
    done = run_cli("sweep", *SMOKE_SWEEP, f"sweep.storage={storage}", "sweep.study_name=secret_storage",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"study in {masked}" in done.stdout
    client = MlflowClient(store_uri(tmp_path))
    runs = client.search_runs([client.get_experiment_by_name("sweep-secret_storage").experiment_id])
    (parent,) = [r for r in runs if r.data.tags["sweeplab.role"] == "sweep"]
    trials = [r for r in runs if r.data.tags["sweeplab.role"] == "trial"]
    assert len(trials) == 2
    assert parent.data.tags["optuna.storage"] == masked
    assert f"sweep.storage={masked}" in json.loads(parent.data.tags["sweeplab.overrides"])
    assert all(f"sweep.storage={masked}" in r.data.tags["sweeplab.command"] for r in trials)
    logs = list((tmp_path / "mlruns" / "sweep-logs").rglob("*.log"))
    artifacts = {p.name for p in (tmp_path / "mlruns" / "artifacts").rglob("*") if p.is_file()}
    assert logs and {"config.yaml", "overrides.txt"} <= artifacts  # the files scanned below exist
    assert leaks(tmp_path, SECRET, done.stdout, done.stderr, experiments=("sweep-secret_storage",)) == []


def test_train_never_shows_a_password_in_an_override(tmp_path):
    done = run_cli("train", "experiment=digits_cnn", "trainer=smoke", "tracking.log_model=false",
                   f"+extra_url=postgresql://u:{SECRET}@db-host/db", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = MlflowClient(store_uri(tmp_path)).search_runs(
        [MlflowClient(store_uri(tmp_path)).get_experiment_by_name("digits_cnn").experiment_id])
    assert run.data.params["extra_url"] == "postgresql://u:***@db-host/db"
    assert "+extra_url=postgresql://u:***@db-host/db" in run.data.tags["sweeplab.command"]
    assert leaks(tmp_path, SECRET, done.stdout, done.stderr, experiments=("digits_cnn",)) == []


@pytest.mark.parametrize("command, args, shown", [
    ("train", ["--print-config", "experiment=digits_cnn", f"+extra_url=postgresql://u:{SECRET}@h/db"],
     "postgresql://u:***@h/db"),
    ("sweep", ["sweep=digits_cnn", f"sweep.storage=redis://u:{SECRET}@h/0"], "redis://u:***@h/0"),
    ("sweep", ["sweep=digits_cnn", f"sweep.storage=postgresql+psycopg2://u:{SECRET}@127.0.0.1:{{port}}/db"],
     "postgresql+psycopg2://u:***@127.0.0.1:"),
    ("train", ["experiment=digits_cnn", f"tracking.uri=http://u:{SECRET}@127.0.0.1:{{port}}"],
     "http://u:***@127.0.0.1:"),
    ("train", ["experiment=digits_cnn", f"+extra_url=postgresql://u:{SECRET}@h/db)"],  # a parse error
     "postgresql://u:***@h/db)"),
])
def test_output_and_errors_never_show_a_password(tmp_path, command, args, shown):
    done = run_cli(command, *[a.format(port=free_port()) for a in args], cwd=tmp_path)
    assert SECRET not in done.stdout + done.stderr, done.stdout + done.stderr
    assert shown in done.stdout + done.stderr
    if "--print-config" not in args:
        assert done.returncode == 2 and done.stderr.startswith("sweeplab: error:"), done.stderr


ENV_SECRET = "EnvPassw0rd"


@pytest.fixture(scope="module")
def password_postgres():
    """A throwaway PostgreSQL that checks passwords (scram-sha-256): its URL, without the password."""
    with postgres_server(password=ENV_SECRET) as url:
        yield url


def test_password_from_the_environment_reaches_the_storage(tmp_path, password_postgres):
    """A URL without a password: libpq takes it from PGPASSWORD, or from ~/.pgpass; none is logged."""
    home = tmp_path / "home"
    home.mkdir()
    no_password = {"HOME": str(home), "PGPASSWORD": "", "PGPASSFILE": ""}
    args = [*SMOKE_SWEEP, f"sweep.storage={password_postgres}", "sweep.study_name=env_password"]
    refused = run_cli("sweep", *args, cwd=tmp_path, env={**no_password, "PGPASSWORD": "wrong"})
    assert refused.returncode == 2 and "is unreachable" in refused.stderr, refused.stderr[-3000:]

    done = run_cli("sweep", *args, cwd=tmp_path, env={**no_password, "PGPASSWORD": ENV_SECRET})
    assert done.returncode == 0, done.stderr[-3000:]
    study = optuna.load_study(study_name="env_password",
                              storage=password_postgres.replace("://postgres@", f"://postgres:{ENV_SECRET}@"))
    assert sorted(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials) == [True, True]

    # ~/.pgpass (mode 600): a worker joining the finished study reaches it and has nothing left to do.
    pgpass = home / ".pgpass"
    port = password_postgres.rsplit(":", 1)[1].split("/")[0]
    pgpass.write_text(f"127.0.0.1:{port}:sweeplab:postgres:{ENV_SECRET}\n")
    pgpass.chmod(0o600)
    joined = run_cli("worker", *args, cwd=tmp_path, env={"HOME": str(home), "PGPASSWORD": "", "PGPASSFILE": ""})
    assert joined.returncode == 0, joined.stderr[-3000:]
    pgpass.unlink()
    outputs = (refused.stdout, refused.stderr, done.stdout, done.stderr, joined.stdout, joined.stderr)
    assert leaks(tmp_path, ENV_SECRET, *outputs, experiments=("sweep-env_password",)) == []
