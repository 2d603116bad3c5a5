"""One small finished digits sweep, run once per test session and read by the warm start and report tests.

Its folder is shared: a test may add studies under other names (a warm-started sweep) but never
changes the `digits_cnn` study or its runs.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import optuna
from mlflow import MlflowClient
from mlflow.entities import Run
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from conftest import run_cli, store_uri

STUDY = "digits_cnn"
# 5 trials of 4 epochs on a few batches, one worker (deterministic): the median pruner may stop trial 4
# only (n_startup_trials=4), so there are 4 complete trials and, as it happens, one pruned.
ARGS = ["sweep=digits_cnn", "trainer=smoke", "sweep.n_trials=5", "sweep.pruner.n_startup_trials=4",
        "tracking.log_model=false", "tracking.log_checkpoint=false"]


def finished_sweep(tmp_path_factory) -> Path:
    """The folder holding the finished sweep (mlruns/ with its MLflow store and Optuna journal)."""
    folder = tmp_path_factory.getbasetemp() / "finished-digits-sweep"
    if not (folder / "finished.txt").exists():
        folder.mkdir(exist_ok=True)
        done = run_cli("sweep", *ARGS, cwd=folder)
        assert done.returncode == 0, done.stderr[-3000:]
        states = Counter(t.state.name for t in study_in(folder).trials)
        # The report's "epochs saved by pruning" and the warm start's top_k need both kinds.
        assert states["COMPLETE"] >= 3 and states["PRUNED"] >= 1, states
        (folder / "finished.txt").write_text(done.stdout)
    return folder


def journal(folder: Path) -> JournalStorage:
    return JournalStorage(JournalFileBackend(str(folder / "mlruns" / "optuna.journal")))


def study_in(folder: Path, name: str = STUDY) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=journal(folder))


def sweep_runs(folder: Path, name: str = STUDY) -> tuple[MlflowClient, Run, list[Run]]:
    """(client, the sweep's parent run, its trial runs)."""
    client = MlflowClient(store_uri(folder))
    experiment = client.get_experiment_by_name(f"sweep-{name}")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("sweeplab.role") == "sweep"]
    return client, parent, [r for r in runs if r.data.tags.get("sweeplab.role") == "trial"]
