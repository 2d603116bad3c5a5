"""Links into the MLflow UI: an experiment, a run or a logged model, opened in the "Model training" view.

MLflow 3's UI opens an experiment in its GenAI view (traces, "No data") unless the URL asks for
`workflowType=machine_learning`; the choice is then kept per browser. The experiment tag
`mlflow.experimentKind` alone does not switch it, so every link sweeplab prints carries the parameter.
Imports nothing heavy: `sweeplab ui` and the end of a run print these.
"""

from __future__ import annotations

from sweeplab.secrets import hide_passwords

UI_HOST = "127.0.0.1"   # `sweeplab ui` defaults
UI_PORT = 5000
VIEW = "workflowType=machine_learning"


def ui_base(uri: str, host: str = UI_HOST, port: int = UI_PORT) -> str:
    """Where the UI for store `uri` is: a tracking server serves it itself; a local store's is `sweeplab ui`'s."""
    if uri.startswith(("http://", "https://")):
        return hide_passwords(uri.rstrip("/"))
    if host in ("0.0.0.0", "::", ""):   # listening everywhere: this machine's browser reaches it on loopback
        host = UI_HOST
    return f"http://{host}:{port}"


def experiments_url(base: str) -> str:
    return f"{base}/#/experiments?{VIEW}"


def experiment_url(base: str, experiment_id: str) -> str:
    return f"{base}/#/experiments/{experiment_id}?{VIEW}"


def run_url(base: str, experiment_id: str, run_id: str) -> str:
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}?{VIEW}"


def shared_view_url(base: str, experiment_id: str, key: str) -> str:
    """The experiment's runs tab opened on a view saved on it (ui_view.py)."""
    return f"{base}/#/experiments/{experiment_id}/runs?viewStateShareKey={key}&{VIEW}"


def sweep_hint(uri: str, experiment_id: str, key: str) -> str:
    """The line printed after a sweep: its trials in the UI, best first."""
    return _hint(uri, "see its trials in the MLflow UI, best first", shared_view_url(ui_base(uri), experiment_id, key))


def model_url(base: str, experiment_id: str, model_id: str) -> str:
    return f"{base}/#/experiments/{experiment_id}/models/{model_id}?{VIEW}"


def run_hint(uri: str, experiment_id: str, run_id: str) -> str:
    """The line printed after a run or sweep: where to see it, and for a local store how to serve it."""
    return _hint(uri, "see it in the MLflow UI", run_url(ui_base(uri), experiment_id, run_id))


def _hint(uri: str, what: str, url: str) -> str:
    """`WHAT: URL`; for a local store, which no server serves yet, how to serve it."""
    if uri.startswith(("http://", "https://")):
        return f"{what}: {url}"
    return f"{what} (start it with `sweeplab ui`): {url}"


def latest_experiment(client) -> str | None:
    """The experiment of the most recent run sweeplab recorded in the store (a train run or a sweep), if any."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    for run in client.search_runs(experiments, order_by=["attributes.start_time DESC"], max_results=50):
        if "sweeplab.version" in run.data.tags or "sweeplab.role" in run.data.tags:
            return run.info.experiment_id
    return None
