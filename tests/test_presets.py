"""Every shipped preset: each experiment trains a step through run_experiment, each sweep samples a trial.

Parametrised over the contents of conf/experiment/ and sweeps/, so a new file is covered without
editing this test.
"""

from __future__ import annotations

import math

import optuna
import pytest
import yaml
from hydra.utils import instantiate
from mlflow import MlflowClient
from omegaconf import OmegaConf

from conftest import FASHION_DIR
from sweeplab.config import compose_config, compose_with_choices, package_config_dir, sweep_dirs

EXPERIMENTS = sorted(path.stem for path in (package_config_dir() / "experiment").glob("*.yaml"))
SWEEPS = sorted(path.stem for path in sweep_dirs()[0].glob("*.yaml"))
# One training batch, one validation batch, one test batch; no model export, no system metrics.
SMOKE_STEP = ["trainer=smoke", "trainer.max_epochs=1", "trainer.limit_train_batches=1",
              "trainer.limit_val_batches=1", "trainer.limit_test_batches=1", "tracking.log_model=false",
              "tracking.system_metrics_interval=null"]
# Less data where a data module takes the key (MNIST-1D generates its signals; text builds a
# vocabulary from the training split); the others are small already.
TINY_DATA = {"train_size": 128, "num_samples": 1000}


def test_the_folders_hold_presets():
    assert {"digits_cnn", "fashion_cnn", "co2_lstm"} <= set(EXPERIMENTS)
    assert {"digits_cnn", "fashion_cnn", "co2_lstm"} <= set(SWEEPS)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite MLflow store for every preset's run; the process's tracking URI is put back after."""
    import mlflow

    folder = tmp_path_factory.mktemp("presets")
    before = mlflow.get_tracking_uri()
    yield [f"tracking.uri=sqlite:///{folder / 'mlflow.db'}", f"tracking.artifact_location={folder / 'artifacts'}"]
    mlflow.set_tracking_uri(before)


def _needs_data(cfg, request) -> None:
    if OmegaConf.select(cfg, "data.root") == str(FASHION_DIR):
        request.getfixturevalue("fashion_available")


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_trains_a_step(name, store, request, monkeypatch):
    from sweeplab.experiment import run_experiment

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    overrides = [f"experiment={name}", *SMOKE_STEP, *store]
    cfg = compose_config(overrides)
    _needs_data(cfg, request)
    cfg = compose_config(overrides + [f"data.{key}={value}" for key, value in TINY_DATA.items() if key in cfg.data])
    assert cfg.name == name

    result = run_experiment(cfg, overrides=overrides)

    assert result.state == "FINISHED"
    monitored = result.metrics[cfg.monitor.metric]
    tested = {key: value for key, value in result.metrics.items() if key.startswith("test/")}
    assert math.isfinite(monitored) and tested and all(math.isfinite(v) for v in tested.values()), result.metrics
    run = MlflowClient(cfg.tracking.uri).get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.data.params["name"] == name


@pytest.mark.parametrize("name", SWEEPS)
def test_every_sweep_samples_a_trial(name):
    from sweeplab.sweep.settings import read_settings
    from sweeplab.sweep.worker.loop import trial_config

    overrides = [f"sweep={name}", "trainer=smoke"]
    cfg, choices = compose_with_choices(overrides)
    settings = read_settings(cfg, choices)
    assert settings.study_name == name and settings.space.distributions
    study = optuna.create_study(sampler=settings.sampler(), pruner=settings.pruner(), directions=settings.directions)
    trial = study.ask()
    trial_overrides = settings.space.suggest(trial)

    trial_cfg = trial_config(overrides, [], settings, trial_overrides)   # a warm worker's way: values set on a copy

    # ... is exactly the config a full compose of the same overrides gives.
    full = trial_config(overrides + trial_overrides, [], settings)
    assert OmegaConf.to_container(trial_cfg) == OmegaConf.to_container(full)

    assert "sweep" not in trial_cfg and trial_cfg.tracking.experiment == f"sweep-{name}"
    assert set(trial.params) == set(settings.space.distributions)
    groups = compose_with_choices(overrides + trial_overrides)[1] if set(trial.params) & set(choices) else {}
    for key, sampled in trial.params.items():
        if key in groups:
            assert groups[key] == sampled, key
            continue
        got = OmegaConf.select(trial_cfg, key)
        if OmegaConf.is_config(got):   # a list or dict choice, stored by Optuna as its override text
            got, sampled = OmegaConf.to_container(got), yaml.safe_load(sampled)
        assert got == sampled, key
    # The sweep optimises its experiment's monitored metric the way the checkpoint keeps it.
    if settings.metrics == [trial_cfg.monitor.metric]:
        assert settings.directions == [{"max": "maximize", "min": "minimize"}[trial_cfg.monitor.mode]]
    # The sampled model can be built.
    instantiate(trial_cfg.model)
