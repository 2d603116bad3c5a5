"""Shared test helpers: run the installed `sweeplab` command in a subprocess, read MLflow back."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from sweeplab.sweep.driver import WORKER_ENTRY, WORKER_MODULES

SWEEPLAB = str(Path(sys.executable).parent / "sweeplab")
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


# Each `sweeplab` command is forked (sweeplab.forks) from one server per test process that imported what a sweep
# worker imports (WORKER_MODULES): not ≈6 s of fresh imports a command, and the workers of the sweeps it starts
# are forked from that server too (a child of a server forks its own children from that server).
# Read as an interpreter starts, so a command given one runs as a fresh process.
AT_START_ENV = ("PYTHONPROFILEIMPORTTIME", "PYTHONWARNINGS", "PYTHONHASHSEED", "OMP_NUM_THREADS", "OMP_WAIT_POLICY")


def run_cli(*args: str, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`sweeplab ARGS` in `cwd`, as a process of its own: a fork of a server that imported sweeplab, or, when the
    test's env changes what an interpreter reads as it starts, a fresh process of the installed command."""
    from sweeplab.forks import client as forks

    clean = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    full = {**clean, **(env or {})}
    if any(full.get(key) != os.environ.get(key) for key in AT_START_ENV):
        return subprocess.run([SWEEPLAB, *args], cwd=cwd, env=full, capture_output=True, text=True, timeout=timeout)
    with tempfile.TemporaryDirectory(prefix="sweeplab-cli-") as folder:
        out, err = Path(folder) / "out", Path(folder) / "err"
        child = forks.server(WORKER_MODULES, clean).fork(WORKER_ENTRY, list(args), env=full, cwd=str(cwd),
                                                         argv=[SWEEPLAB, *args], out=out, err=err, name="sweeplab")
        code = child.wait_or_kill(timeout)
        return subprocess.CompletedProcess([SWEEPLAB, *args], code, out.read_text(), err.read_text())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def store_uri(directory: Path) -> str:
    return f"sqlite:///{directory / 'mlruns' / 'mlflow.db'}"


def runs_in(directory: Path, experiment: str):
    """All runs of `experiment` in the default store under `directory` (empty when there is none)."""
    from mlflow import MlflowClient

    if not (directory / "mlruns" / "mlflow.db").exists():
        return []
    client = MlflowClient(store_uri(directory))
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id]) if found else []


@pytest.fixture(scope="session")
def fashion_available() -> bool:
    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    return True


PG_BIN = Path("/usr/lib/postgresql/15/bin")


@contextlib.contextmanager
def postgres_server(password: str | None = None):
    """A throwaway PostgreSQL server on 127.0.0.1 with a database `sweeplab`; yields its URL (user postgres,
    no password in it). With `password`, the server checks it (scram-sha-256); else it trusts anyone."""
    initdb = PG_BIN / "initdb" if (PG_BIN / "initdb").exists() else shutil.which("initdb")
    if not initdb:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql-15)")
    bin_dir = Path(initdb).parent
    # Not under pytest's tmp dir: the postgres user could not enter root's private folders.
    folder = Path(tempfile.mkdtemp(prefix="sweeplab-pg-"))
    auth = ["-A", "trust"]
    if password is not None:
        (folder / "pw").write_text(password + "\n")
        auth = ["-A", "scram-sha-256", f"--pwfile={folder / 'pw'}"]
    as_postgres = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        for path in folder.iterdir():
            shutil.chown(path, "postgres")
        shutil.chown(folder, "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    data = folder / "data"
    subprocess.run([*as_postgres, str(bin_dir / "initdb"), "-D", str(data), *auth, "-U", "postgres"],
                   check=True, capture_output=True)
    subprocess.run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w",
                    "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True)
    try:
        subprocess.run([*as_postgres, str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port),
                        "-U", "postgres", "sweeplab"], check=True, capture_output=True,
                       env={**os.environ, **({"PGPASSWORD": password} if password is not None else {})})
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/sweeplab"
    finally:
        subprocess.run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL server (trust auth), stopped at the end of the session."""
    with postgres_server() as url:
        yield url
