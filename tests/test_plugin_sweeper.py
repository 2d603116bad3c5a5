"""Sweep files written for the Hydra Optuna sweeper plugin run unchanged with `sweeplab sweep`.

tests/fixtures/plugin_conf/hparams_search/ holds two such files over the digits_cnn keys: one in
lightning-hydra-template's form (hydra.sweeper.params), one in the plugin's older search_space form.
Each expected distribution is built by hand from the plugin's rules (hydra_plugins/hydra_optuna_sweeper/
_impl.py: create_optuna_distribution_from_override and create_optuna_distribution_from_config).
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from conftest import run_cli, store_uri

CONF = str(Path(__file__).parent / "fixtures" / "plugin_conf")
RUN = ["--config-dir", CONF, "experiment=digits_cnn", "trainer=smoke"]

PARAMS = {  # hydra.sweeper.params of digits_optuna.yaml
    "model.dropout": FloatDistribution(0.0, 0.5),                                 # interval(0.0, 0.5)
    "optimizer.lr": FloatDistribution(0.0001, 0.01, log=True),                    # tag(log, interval(...))
    "model.backbone.pooled_size": IntDistribution(2, 3),                          # int(interval(2, 3))
    "data.batch_size": IntDistribution(16, 64, log=True),                         # tag(log, int(interval(16, 64)))
    "trainer.max_epochs": IntDistribution(1, 2, step=1),                          # range(1, 2): stop included
    "model.label_smoothing": FloatDistribution(0.0, 0.2, step=0.05),              # range(0.0, 0.2, 0.05)
    "model.backbone.batch_norm": CategoricalDistribution([True, False]),          # choice(true, false)
    "model.backbone.channels": CategoricalDistribution(["[8,16]", "[16,32]"]),   # choice([8, 16], [16, 32])
}
SEARCH_SPACE = {  # hydra.sweeper.search_space of digits_optuna_legacy.yaml
    "optimizer.lr": FloatDistribution(0.0001, 0.01, log=True),                    # float, log
    "model.dropout": FloatDistribution(0.0, 0.5, step=0.1),                       # float, step
    "model.label_smoothing": FloatDistribution(0, 0.2),                           # float
    "data.batch_size": IntDistribution(16, 64, log=True),                         # int, log
    "trainer.max_epochs": IntDistribution(1, 2, step=1),                          # int (step 1)
    "model.backbone.pooled_size": IntDistribution(1, 3, step=2),                  # int, step
    "model.backbone.batch_norm": CategoricalDistribution([True, False]),          # categorical
}


def study(cwd: Path, name: str) -> optuna.Study:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(cwd / "mlruns" / "optuna.journal")))
    return optuna.load_study(study_name=name, storage=storage)


def test_plugin_files_run_unchanged_with_the_plugins_distributions(tmp_path):
    done = run_cli("sweep", *RUN, "hparams_search=digits_optuna", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    # n_jobs: 2 -> two worker processes; study_name: null -> the file's name.
    assert "sweep digits_optuna: 2 trials, 2 worker(s)" in done.stdout and "plan: 2 workers" in done.stdout
    found = study(tmp_path, "digits_optuna")
    assert found.direction == optuna.study.StudyDirection.MAXIMIZE
    assert [t.state.name for t in found.trials] == ["COMPLETE", "COMPLETE"]  # no pruner: every trial runs out
    for trial in found.trials:
        assert trial.distributions == PARAMS
    # optimized_metric: val/acc, read as lightning-hydra-template's train.py reads it: its last value.
    client = MlflowClient(store_uri(tmp_path))
    runs = client.search_runs([client.get_experiment_by_name("sweep-digits_optuna").experiment_id],
                              "tags.`sweeplab.role` = 'trial'")
    for run in runs:
        trial = found.trials[int(run.data.tags["optuna.trial_number"])]
        assert trial.value == pytest.approx(client.get_metric_history(run.info.run_id, "val/acc")[-1].value)

    done = run_cli("sweep", *RUN, "hparams_search=digits_optuna_legacy", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sweep digits_legacy: 1 trials, 1 worker(s)" in done.stdout
    found = study(tmp_path, "digits_legacy")
    assert found.direction == optuna.study.StudyDirection.MINIMIZE
    assert [t.distributions for t in found.trials] == [SEARCH_SPACE]


@pytest.mark.parametrize("name, args, message", [
    ("digits_optuna", ["hydra.sweeper.custom_search_space=my.module.configure"], "hydra.sweeper.custom_search_space"),
    ("digits_optuna", ["hydra.sweeper.max_failure_rate=0.5"], "hydra.sweeper.max_failure_rate=0.5"),
    ("digits_optuna", ["+hydra.sweeper.n_workers=2"], "hydra.sweeper.n_workers: not a key"),
    ("digits_optuna", ["~optimized_metric"], "needs the metric to optimise: optimized_metric"),
    ("digits_optuna", ["sweep=digits_cnn"], "both define the sweep"),
    ("digits_optuna_legacy", ["hydra/sweeper/sampler=grid"], "grid sampler"),
])
def test_what_sweeplab_cannot_honour_exits_2_and_writes_nothing(tmp_path, name, args, message):
    done = run_cli("sweep", *RUN, f"hparams_search={name}", *args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sweeplab: error:") and message in lines[0], done.stderr
    assert not (tmp_path / "mlruns").exists()
