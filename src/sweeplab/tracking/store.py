"""Which MLflow store a run goes to, whether it answers, and the experiment to put runs in."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from sweeplab.errors import ConfigError
from sweeplab.secrets import hide_passwords


def tracking_uri(configured: str) -> str:
    """$MLFLOW_TRACKING_URI wins; a relative sqlite path is made absolute (and its folder created)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or configured
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        path = Path(uri[len("sqlite:///"):]).resolve()
        uri = f"sqlite:///{path}"
    return uri


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail fast with one line when the store cannot be used, before any run is created."""
    if uri.startswith(("http://", "https://")):
        try:
            urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout).close()
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ConfigError(hide_passwords(f"tracking server {uri} is unreachable ({reason}); start it, or set "
                              "tracking.uri / MLFLOW_TRACKING_URI to a reachable server or sqlite:///PATH")) from None
    elif uri.startswith(("file:", "/", ".")) or "://" not in uri:
        raise ConfigError(f"tracking.uri={hide_passwords(uri)}: MLflow no longer accepts the plain file store; use "
                          "sqlite:///PATH (default sqlite:///mlruns/mlflow.db) or http://HOST:PORT")


def no_such_run(run_id: str, uri: str) -> ConfigError:
    return ConfigError(f"run {run_id}: no such run in {hide_passwords(uri)}; "
                       "give the id of a run (or sweep) that sweeplab recorded there")


def run_exists(uri: str, run_id: str) -> bool | None:
    """Whether a local SQLite store holds run `run_id`, read with sqlite3 alone (≈0.01 s; MLflow's client
    takes ≈2 s to import and open the store); None when this cannot tell (a server, another schema)."""
    if not uri.startswith("sqlite:///"):
        return None
    import sqlite3

    path = Path(uri[len("sqlite:///"):])
    try:
        with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as connection:
            # MLflow's schema: table `runs`, the id in column `run_uuid` (see docs/private-apis.md).
            return connection.execute("select 1 from runs where run_uuid = ?", (run_id,)).fetchone() is not None
    except sqlite3.Error:
        return None


def open_client(uri: str):
    """An MlflowClient on `uri`, with the folder of a local SQLite store created first."""
    from mlflow import MlflowClient

    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(uri)


def experiment_id(client, name: str, artifact_location: str | None) -> str:
    """The id of experiment `name`, created (with artifacts under artifact_location) if new."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = artifact_location
    if location and "://" not in location:
        # A local path is this machine's: on a tracking server the server keeps the artifacts
        # (`mlflow server --artifacts-destination`), where every machine's runs can reach them.
        server = client.tracking_uri.startswith(("http://", "https://"))
        location = None if server else Path(location).resolve().as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except Exception:
        # Another worker created it between our lookup and create.
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id
