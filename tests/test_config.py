"""Composing the config tree: presets, stable sweep keys, overrides, and bad input."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from sweeplab.config import compose_config
from sweeplab.errors import ConfigError

SWEPT_KEYS = ["optimizer.lr", "optimizer.weight_decay", "data.batch_size", "model.dropout",
              "model.label_smoothing", "model.l1", "data.train_size", "seed", "trainer.max_epochs"]


@pytest.mark.parametrize("experiment", ["fashion_cnn", "digits_cnn"])
@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "rmsprop"])
def test_every_preset_composes_with_the_swept_keys(experiment, optimizer):
    cfg = compose_config([f"experiment={experiment}", f"optimizer={optimizer}"])
    assert cfg.name == experiment
    for key in SWEPT_KEYS:
        assert OmegaConf.select(cfg, key, default="absent") != "absent", key
    assert cfg.optimizer._partial_ is True


def test_interpolations_follow_overrides():
    cfg = compose_config(["experiment=digits_cnn", "model.dropout=0.3", "optimizer.lr=0.01",
                          "scheduler=onecycle"])
    assert cfg.model.backbone.dropout == 0.3
    assert cfg.scheduler.max_lr == 0.01
    assert cfg.model.backbone.in_channels == 1


def test_numbers_may_widen_but_not_change_kind():
    cfg = compose_config(["optimizer.lr=1", "data.train_size=500"])
    assert cfg.optimizer.lr == 1 and cfg.data.train_size == 500


@pytest.mark.parametrize("overrides, message", [
    (["experiment=nope"], "available in 'experiment': "),
    (["optimizer=lion"], "available in 'optimizer': adam, adamw, rmsprop, sgd"),
    (["trainer.max_epoch=3"], "unknown config key 'trainer.max_epoch'"),
    (["trainer.max_epochs=abc"], "trainer.max_epochs='abc' is not valid: expected an integer"),
    (["trainer.max_epochs=2.5"], "expected an integer"),
    (["optimizer.lr=fast"], "expected a number"),
    (["data.augment=3"], "expected true or false"),
    (["trainer.max_epochs=="], ""),
    (["model.init_from=abc"], "unknown config key 'model.init_from'; did you mean finetune.init_from?"),
])
def test_bad_input_is_one_clear_line(overrides, message):
    with pytest.raises(ConfigError) as caught:
        compose_config(overrides)
    text = str(caught.value)
    assert message in text
    if "experiment=nope" in overrides:
        assert "digits_cnn" in text and "fashion_cnn" in text
    assert "\n" not in text


def test_user_config_dir_adds_options(tmp_path):
    (tmp_path / "optimizer").mkdir()
    (tmp_path / "optimizer" / "lamb.yaml").write_text(
        "_target_: torch.optim.Adam\n_partial_: true\nlr: 0.002\nweight_decay: 0.0\n")
    cfg = compose_config(["optimizer=lamb"], [str(tmp_path)])
    assert cfg.optimizer.lr == 0.002
    with pytest.raises(ConfigError, match="no such directory"):
        compose_config([], [str(tmp_path / "missing")])


def test_a_trial_config_is_a_full_compose_with_every_check():
    from sweeplab.config import compose_trial

    sweep = ["sweep=digits_cnn", "trainer=smoke"]
    values = ["optimizer.lr=0.003", "data.batch_size=16", "model.dropout=0.25"]
    fast = compose_trial(sweep, values)
    assert OmegaConf.to_container(fast) == OmegaConf.to_container(compose_config(sweep + values))
    assert fast.model.backbone.dropout == 0.25   # interpolations follow the trial's values
    # The sweep's own config is not changed by a trial (the next trial starts from it again).
    assert compose_trial(sweep, ["optimizer.lr=0.01"]).model.dropout == compose_config(sweep).model.dropout
    # A group choice composes in full.
    assert compose_trial(sweep, ["optimizer=sgd"]).optimizer._target_ == "torch.optim.SGD"
    # Every check of a full compose still applies, with the same words.
    for bad in (["data.batch_size=sixteen"], ["optimizer.lrr=0.1"], ["trainer.max_epochs=1.5"]):
        with pytest.raises(ConfigError) as full:
            compose_config(sweep + bad)
        with pytest.raises(ConfigError) as fast_error:
            compose_trial(sweep, bad)
        assert str(fast_error.value) == str(full.value)


SWEEP_DEFAULTS = OmegaConf.load(Path(__file__).parents[1] / "conf" / "sweep_defaults.yaml").sweep
OVERRIDES = {"metric": "val/loss", "direction": "minimize", "objective": "last", "n_trials": "3", "workers": "2",
             "devices_per_trial": "1", "timeout": "60", "storage": "sqlite:///study.db", "study_name": "other",
             "max_consecutive_failures": "2", "resume": "force", "warm_start": "earlier", "register_as": "mine"}


@pytest.fixture
def params_only(tmp_path):
    """--config-dir with sweeps/mine.yaml: a sweep file that names nothing but its params."""
    (tmp_path / "sweeps").mkdir()
    (tmp_path / "sweeps" / "mine.yaml").write_text(
        "# @package _global_\nsweep:\n  params:\n    optimizer.lr: tag(log, interval(1e-4, 1e-2))\n")
    return [str(tmp_path)]


def test_every_documented_sweep_key_has_a_default_and_an_override(params_only):
    from sweeplab.config import compose_with_choices
    from sweeplab.sweep.settings import read_settings

    assert set(OVERRIDES) == set(SWEEP_DEFAULTS)   # every key of conf/sweep_defaults.yaml is tried below
    cfg, choices = compose_with_choices(["sweep=mine", "experiment=digits_cnn"], params_only)
    settings = read_settings(cfg, choices)
    assert (settings.metrics, settings.directions) == (["val/acc"], ["maximize"])   # from monitor.*
    assert (settings.n_trials, settings.workers, settings.max_consecutive_failures) == (20, 1, 5)
    assert (choices["sampler"], choices["pruner"]) == ("tpe", "halving")
    for key, value in OVERRIDES.items():
        cfg, _ = compose_with_choices(["sweep=mine", f"sweep.{key}={value}"], params_only)
        assert str(cfg.sweep[key]) == value, key
    cfg, choices = compose_with_choices(["sweep=mine", "sampler=random", "pruner=median"], params_only)
    assert read_settings(cfg, choices).pruner_cfg._target_ == "optuna.pruners.MedianPruner"
    assert cfg.sweep.sampler._target_ == "optuna.samplers.RandomSampler"


def test_a_sweep_built_on_another_keeps_that_files_pruner_and_keys(params_only):
    from sweeplab.config import compose_with_choices

    (Path(params_only[0]) / "sweeps" / "mine_more.yaml").write_text(
        "# @package _global_\ndefaults:\n  - mine\n  - _self_\nsweep:\n  n_trials: 7\n")
    (Path(params_only[0]) / "sweeps" / "mine.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /pruner: median\nsweep:\n  objective: last\n"
        "  params:\n    optimizer.lr: tag(log, interval(1e-4, 1e-2))\n")
    cfg, choices = compose_with_choices(["sweep=mine_more", "experiment=digits_cnn"], params_only)
    assert choices["pruner"] == "median" and cfg.sweep.pruner._target_ == "optuna.pruners.MedianPruner"
    assert (cfg.sweep.objective, cfg.sweep.n_trials, cfg.sweep.workers) == ("last", 7, 1)


def test_a_sweep_metric_other_than_the_monitor_needs_a_direction(params_only):
    from sweeplab.config import compose_with_choices
    from sweeplab.sweep.settings import read_settings

    cfg, choices = compose_with_choices(["sweep=mine", "sweep.metric=val/loss"], params_only)
    with pytest.raises(ConfigError, match=r"sweep.direction=None: give maximize or minimize"):
        read_settings(cfg, choices)
