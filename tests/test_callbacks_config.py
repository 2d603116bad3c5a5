"""The `callbacks` config group (composed, overridden, swept, built) and the sweep's `objective` setting."""

import importlib.util

import pytest
from pytorch_lightning.callbacks import EarlyStopping, LearningRateMonitor, StochasticWeightAveraging, Timer

from sweeplab.config import compose_config, compose_with_choices
from sweeplab.config.callbacks import from_config
from sweeplab.errors import ConfigError
from sweeplab.sweep.settings import read_settings

BASE = ["experiment=digits_cnn"]


def built(*overrides: str) -> list:
    return from_config(compose_config([*BASE, *overrides]))


def test_none_by_default():
    assert built() == []


@pytest.mark.parametrize("option, kind", [("early_stopping", EarlyStopping), ("lr_monitor", LearningRateMonitor),
                                          ("swa", StochasticWeightAveraging)])
def test_each_option_builds_its_callback(option, kind):
    (callback,) = built(f"callbacks={option}")
    assert isinstance(callback, kind)


def test_early_stopping_watches_the_checkpoints_metric_and_takes_overrides():
    (stop,) = built("callbacks=early_stopping", "callbacks.early_stopping.patience=7",
                    "monitor.metric=val/loss", "monitor.mode=min")
    assert (stop.monitor, stop.patience, stop.mode) == ("val/loss", 7, "min")


def test_several_options_and_the_users_own_by_target():
    found = built("callbacks=[early_stopping,lr_monitor]", "+callbacks.mine._target_=pytorch_lightning.callbacks.Timer",
                  "+callbacks.mine.duration=00:00:10:00")
    assert [type(c) for c in found] == [EarlyStopping, LearningRateMonitor, Timer]


def test_an_entry_set_to_null_is_left_out():
    assert built("callbacks=[early_stopping,lr_monitor]", "callbacks.lr_monitor=null") != []
    assert [type(c) for c in built("callbacks=[early_stopping,lr_monitor]", "callbacks.lr_monitor=null")] == \
        [EarlyStopping]


@pytest.mark.parametrize("overrides, message", [
    (["+callbacks.bad._target_=collections.OrderedDict"], "callbacks.bad: collections.OrderedDict built a "
                                                          "OrderedDict, not a pytorch_lightning Callback"),
    (["+callbacks.bad._target_=no_such_module.Callback"], "callbacks.bad: cannot import no_such_module.Callback"),
    (["callbacks=nope"], "available in 'callbacks': default, early_stopping, lr_monitor, rich_progress_bar, swa"),
])
def test_bad_callbacks_are_one_line(overrides, message):
    with pytest.raises(ConfigError) as error:
        built(*overrides)
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.skipif(importlib.util.find_spec("rich") is not None, reason="rich is installed here")
def test_the_rich_progress_bar_without_rich_is_one_line():
    with pytest.raises(ConfigError) as error:
        built("callbacks=rich_progress_bar")
    assert str(error.value).startswith("callbacks.rich_progress_bar: `RichProgressBar` requires `rich`")
    assert "pip install" in str(error.value) and "\n" not in str(error.value)


def sweep_settings(*overrides: str):
    return read_settings(*compose_with_choices(["sweep=digits_cnn", *overrides]))


def test_callbacks_can_be_swept_as_keys_and_as_a_group():
    settings = sweep_settings("callbacks=early_stopping",
                              "sweep.params.callbacks.early_stopping.patience=choice(2,4)",
                              "sweep.params.callbacks=choice(default,early_stopping)")
    assert settings.space.distributions["callbacks.early_stopping.patience"].choices == (2, 4)
    assert settings.space.distributions["callbacks"].choices == ("default", "early_stopping")


def test_sweep_objective_is_best_unless_told_and_checked():
    assert sweep_settings().objective == "best"
    assert sweep_settings("sweep.objective=last").objective == "last"
    with pytest.raises(ConfigError, match="sweep.objective=final: must be best"):
        sweep_settings("sweep.objective=final")
