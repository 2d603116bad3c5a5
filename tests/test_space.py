"""Search space: Hydra sweep grammar -> Optuna distributions -> override strings Hydra reads back."""

import math
import re

import optuna
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from sweeplab.errors import ConfigError
from sweeplab.config.plugin_sweeper import legacy_params
from sweeplab.sweep.space import ABSENT, SearchSpace, parse_space

GROUPS = {"optimizer", "model", "data", "trainer", "scheduler"}

PARAMS = {
    "optimizer.lr": "tag(log, interval(1e-4, 1e-1))",
    "optimizer.weight_decay": "tag(log, interval(1e-6, 1e-2))",
    "data.batch_size": "choice(32, 64, 128)",
    "model.dropout": "interval(0.0, 0.5)",
    "model.backbone.channels": "choice([16, 32], [32, 64])",
    "trainer.max_epochs": "range(1, 3)",
    "optimizer": "choice(adam, sgd)",
    "model.l1": "0.001",
}

optuna.logging.set_verbosity(optuna.logging.WARNING)


def parse_back(line: str):
    """What Hydra makes of one override line: (key, value)."""
    [override] = OverridesParser.create().parse_overrides([line])
    assert not override.is_sweep_override(), line
    return override.key_or_group, override.value()


@pytest.fixture
def space() -> SearchSpace:
    return parse_space(PARAMS, groups=GROUPS)


# Each expected distribution is built by hand from the Hydra Optuna sweeper plugin's rules
# (create_optuna_distribution_from_override): the same expression must mean the same thing here.
@pytest.mark.parametrize("text, expected", [
    ("interval(0.0, 0.5)", FloatDistribution(0.0, 0.5)),
    ("interval(1, 10)", FloatDistribution(1.0, 10.0)),  # Hydra makes interval bounds floats
    ("tag(log, interval(1e-4, 1e-1))", FloatDistribution(1e-4, 0.1, log=True)),
    ("int(interval(1, 5))", IntDistribution(1, 5)),
    ("tag(log, int(interval(1, 5)))", IntDistribution(1, 5, log=True)),
    ("range(1, 4)", IntDistribution(1, 4)),  # stop is included, as in the plugin
    ("range(1,3)", IntDistribution(1, 3)),
    ("range(5)", IntDistribution(0, 5)),
    ("range(0, 10, 3)", IntDistribution(0, 10, step=3)),  # Optuna lowers high to 9
    ("range(0, 10, 5)", IntDistribution(0, 10, step=5)),
    ("range(3, 3)", IntDistribution(3, 3)),
    ("range(0, 1, 0.1)", FloatDistribution(0.0, 1.0, step=0.1)),
    ("range(0.5, 5.5, step=1)", FloatDistribution(0.5, 5.5, step=1)),
    ("range(0.1, 1.0, 0.2)", FloatDistribution(0.1, 1.0, step=0.2)),  # Optuna lowers high to 0.9
    ("range(1, 4.5)", FloatDistribution(1.0, 4.5, step=1.0)),
    ("float(range(1, 4))", FloatDistribution(1.0, 4.0, step=1.0)),
    ("shuffle(range(1,3))", CategoricalDistribution((1, 2))),  # Hydra's iteration: stop excluded
    ("shuffle(choice(3, 1, 2))", CategoricalDistribution((3, 1, 2))),  # kept in the order written
    ("choice(1,2)", CategoricalDistribution([1, 2])),
    ("choice(true, false)", CategoricalDistribution([True, False])),
    ("choice('hello', 'world')", CategoricalDistribution(["hello", "world"])),
    ("choice(32, 64, 128)", CategoricalDistribution([32, 64, 128])),
    ("32,64", CategoricalDistribution([32, 64])),
    ("choice(0.1, 1e-3, true, relu)", CategoricalDistribution([0.1, 0.001, True, "relu"])),
    ("choice([16, 32], [32, 64])", CategoricalDistribution(["[16,32]", "[32,64]"])),
    ("choice({a: 1}, {a: 2})", CategoricalDistribution(["{a:1}", "{a:2}"])),
])
def test_grammar_maps_to_distribution(text, expected):
    space = parse_space({"x": text})
    assert space.distributions == {"x": expected}
    assert space.fixed == {}
    assert space.describe() == {"x": text}


def test_distribution_number_types(space):
    lr, epochs = space.distributions["optimizer.lr"], space.distributions["trainer.max_epochs"]
    assert isinstance(lr.low, float) and isinstance(lr.high, float)
    assert isinstance(epochs.low, int) and isinstance(epochs.high, int)
    assert space.distributions["optimizer"] == CategoricalDistribution(["adam", "sgd"])


def test_fixed_values_pass_through():
    space = parse_space({"model.l1": "0.001", "seed": 7, "model.name": "cnn", "data.mean": [0.5, 0.25],
                         "flag": True, "ckpt": None, "tag": "x y"})
    assert space.distributions == {}
    assert space.fixed == {"model.l1": "0.001", "seed": "7", "model.name": "cnn", "data.mean": "[0.5,0.25]",
                           "flag": "true", "ckpt": "null", "tag": "x y"}
    lines = space.suggest(optuna.create_study().ask())
    assert dict(map(parse_back, lines)) == {"model.l1": 0.001, "seed": 7, "model.name": "cnn",
                                            "data.mean": [0.5, 0.25], "flag": True, "ckpt": None, "tag": "x y"}


def test_omegaconf_params_are_read_as_written():
    cfg = OmegaConf.create({"params": {"optimizer.lr": "interval(0.1, 0.2)", "model.size": [1, 2],
                                       "model.ref": "${data.size}"}})
    space = parse_space(cfg.params)
    assert space.fixed == {"model.size": "[1,2]", "model.ref": "${data.size}"}


def test_suggest_writes_overrides_hydra_reads_back(space):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        values = dict(map(parse_back, space.suggest(trial)))
        assert set(values) == set(PARAMS)
        assert values["model.l1"] == 0.001
        assert type(values["optimizer.lr"]) is float and 1e-4 <= values["optimizer.lr"] <= 0.1
        assert values["optimizer.lr"] == trial.params["optimizer.lr"]
        assert type(values["model.dropout"]) is float and 0.0 <= values["model.dropout"] <= 0.5
        assert type(values["data.batch_size"]) is int and values["data.batch_size"] in (32, 64, 128)
        assert type(values["trainer.max_epochs"]) is int and values["trainer.max_epochs"] in (1, 2, 3)  # range(1, 3)
        assert values["model.backbone.channels"] in ([16, 32], [32, 64])
        assert values["optimizer"] in ("adam", "sgd")
        study.tell(trial, values["optimizer.lr"])


def test_float_range_values_stay_on_the_grid():
    space = parse_space({"x": "range(0, 0.9, 0.1)"})  # 0.0, 0.1, ..., 0.9: stop included
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(40):
        _, value = parse_back(space.suggest(study.ask())[0])
        assert type(value) is float and 0.0 <= value <= 0.9 + 1e-9
        assert math.isclose(value * 10, round(value * 10), abs_tol=1e-9)
        seen.add(round(value, 6))
    assert 0.9 in seen and 1.0 not in seen


def test_choices_that_need_quoting_round_trip():
    text = "choice('1', 'true', 'null', 'x y', 'a,b', '[1,2]', 'ok', 3, true, 2.5, ['q r', '1', 'null'], {k: '2'})"
    space = parse_space({"x": text})
    expected = ["1", "true", "null", "x y", "a,b", "[1,2]", "ok", 3, True, 2.5, ["q r", "1", "null"], {"k": "2"}]
    back = [parse_back(line)[1] for choice in space.distributions["x"].choices
            for line in space.overrides_for({"x": choice})]
    assert back == expected
    assert [type(v) for v in back] == [type(v) for v in expected]
    assert space.overrides_for({"x": "ok"}) == ["x=ok"]  # bare when that reads back the same


def test_overrides_for_best_params(space):
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.RandomSampler(seed=0))
    sampled = []
    for i in range(6):
        trial = study.ask()
        sampled.append(space.suggest(trial))
        study.tell(trial, float((i - 3) ** 2))
    assert study.best_trial.number == 3
    assert space.overrides_for(study.best_params) == sampled[3]
    assert "model.l1=0.001" in sampled[3]


def test_ask_with_fixed_distributions(space):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask(fixed_distributions=space.distributions)
    lines = space.overrides_for(trial.params)
    assert [line.split("=")[0] for line in lines] == list(space.distributions) + ["model.l1"]


def test_overrides_for_rejects_unknown_or_missing_values(space):
    params = {"optimizer.lr": 0.01, "optimizer.weight_decay": 1e-4, "data.batch_size": 48, "model.dropout": 0.1,
              "model.backbone.channels": "[16,32]", "trainer.max_epochs": 2, "optimizer": "adam"}
    with pytest.raises(ConfigError, match="data.batch_size=48 is not one of the choices"):
        space.overrides_for(params)
    with pytest.raises(ConfigError, match="no value for swept param"):
        space.overrides_for({"optimizer.lr": 0.01})


def test_known_keys_accepts_config_keys_and_new_ones():
    known = {"optimizer.lr", "model.l1"}.__contains__
    space = parse_space({"optimizer.lr": "interval(0.1, 0.2)", "model.l1": 0.0, "optimizer": "choice(adam, sgd)",
                         "+model.extra": "choice(1, 2)"}, groups=GROUPS, known_keys=known)
    assert space.overrides_for({"optimizer.lr": 0.15, "optimizer": "sgd", "+model.extra": 2})[:3] == \
        ["optimizer.lr=0.15", "optimizer=sgd", "+model.extra=2"]


@pytest.mark.parametrize("params, kwargs, message", [
    ({"optimizer.lr": "interval(1)"}, {}, "sweep.params.optimizer.lr: interval(1): not valid sweep grammar"),
    ({"optimizer.lr": "choice()"}, {}, "empty choice is not legal"),
    ({"optimizer.lr": "((garbage"}, {}, "not valid sweep grammar"),
    ({"optimizer.lr": "interval(a, b)"}, {}, "not valid sweep grammar"),
    ({"optimizer.lr": "interval([1], 2)"}, {}, "not valid sweep grammar"),
    ({"optimizer.lr": "interval(0.5, 0.1)"}, {}, "needs low <= high"),
    ({"trainer.max_epochs": "range(4, 1)"}, {}, "needs start <= stop (stop is included)"),
    ({"trainer.max_epochs": "shuffle(range(3, 3))"}, {}, "reaches no value"),
    ({"trainer.max_epochs": "int(interval(4, 1))"}, {}, "needs low <= high"),
    ({"trainer.max_epochs": "tag(log, int(interval(0, 4)))"}, {}, "a log scale needs low > 0"),
    ({"optimizer.lr": "tag(log, interval(0, 0.1))"}, {},
     "sweep.params.optimizer.lr: tag(log, interval(0, 0.1)): a log scale needs low > 0"),
    ({"optimizer.lr": "tag(log, interval(-1, 0.1))"}, {}, "a log scale needs low > 0"),
    ({"trainer.max_epochs": "tag(log, range(1, 100))"}, {}, "the Optuna sweeper plugin ignores tag(log, range(...))"),
    ({"trainer.max_epochs": "range(1, 4, 0)"}, {}, "the range step must be > 0"),
    ({"trainer.max_epochs": "range(4, 1, -1)"}, {}, "the range step must be > 0"),
    ({"x": "interval(0, inf)"}, {}, "must be finite"),
    ({"x": "tag(foo, interval(0, 1))"}, {}, "unknown tag foo"),
    ({"x": "tag(log, choice(1, 2))"}, {}, "a log scale applies to interval() only"),
    ({"x": "choice(1, 1.0)"}, {}, "repeats an earlier one"),
    ({"x": "choice(choice(1, 2), 3)"}, {}, "a choice cannot hold another sweep"),
    ({"x": {1, 2}}, {}, "sweep.params.x: a set value cannot be an override"),
    ({"optimizer.lrr": "interval(0.1, 0.2)"}, {"known_keys": {"optimizer.lr"}.__contains__},
     "sweep.params.optimizer.lrr: interval(0.1, 0.2): no such key in the composed config"),
    ({"optimizer": "interval(0, 1)"}, {"groups": GROUPS}, "a config group takes choice(option, ...)"),
    ({"optimizer": "range(1, 3)"}, {"groups": GROUPS}, "a config group takes choice(option, ...)"),
    ({"optimizer": "sgd"}, {"groups": GROUPS}, "a config group takes choice(option, ...)"),
    ({"optimizer": "choice(1, 2)"}, {"groups": GROUPS}, "a config group choice lists option names"),
    ({"optimizer": "glob(*)"}, {"groups": GROUPS}, "glob() cannot be sampled"),
    ({"~model.l1": "1"}, {}, "the key must be a dotted config key or a config group name"),
])
def test_bad_input_is_one_line_config_error(params, kwargs, message):
    with pytest.raises(ConfigError) as info:
        parse_space(params, **kwargs)
    text = str(info.value)
    assert message in text
    assert "\n" not in text
    assert text.startswith(f"sweep.params.{next(iter(params))}")


# The plugin's older search_space form (create_optuna_distribution_from_config), rule by rule.
@pytest.mark.parametrize("spec, expected", [
    ({"type": "float", "low": 1e-4, "high": 1e-2}, FloatDistribution(1e-4, 1e-2)),
    ({"type": "float", "low": 0, "high": 1}, FloatDistribution(0.0, 1.0)),
    ({"type": "float", "low": 1e-4, "high": 1e-2, "log": True}, FloatDistribution(1e-4, 1e-2, log=True)),
    ({"type": "float", "low": 1e-4, "high": 1e-2, "log": True, "step": 0.5}, FloatDistribution(1e-4, 1e-2, log=True)),
    ({"type": "float", "low": -5.5, "high": 5.5, "step": 0.5}, FloatDistribution(-5.5, 5.5, step=0.5)),
    ({"type": "float", "low": 0, "high": 2, "step": 1}, FloatDistribution(0.0, 2.0, step=1.0)),
    ({"type": "int", "low": 1, "high": 4}, IntDistribution(1, 4)),
    ({"type": "int", "low": 0, "high": 10, "step": 5}, IntDistribution(0, 10, step=5)),
    ({"type": "int", "low": 1.5, "high": 4.9}, IntDistribution(1, 4)),  # int() of each bound
    ({"type": "int", "low": 16, "high": 256, "log": True}, IntDistribution(16, 256, log=True)),
    ({"type": "int", "low": 16, "high": 256, "log": True, "step": 16}, IntDistribution(16, 256, log=True)),
    ({"type": "categorical", "choices": [4, 2.5, "x y", True]}, CategoricalDistribution([4, 2.5, "x y", True])),
])
def test_legacy_search_space_maps_like_the_plugin(spec, expected):
    space = parse_space(legacy_params({"x": spec}))
    assert space.distributions == {"x": expected}


@pytest.mark.parametrize("spec, message", [
    ({"type": "normal", "low": 0, "high": 1}, "hydra.sweeper.search_space.x.type=normal: allowed: int, float"),
    ({"type": "float", "low": 0}, "needs numbers low and high"),
    ({"type": "float", "lo": 0, "high": 1}, "unknown field(s) lo"),
    ({"type": "categorical"}, "needs choices"),
    ({"type": "categorical", "choices": [None, 1]}, "a null choice"),
    (3, "expected a mapping"),
])
def test_legacy_search_space_bad_input(spec, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        legacy_params({"x": spec})


CONFIG = {"i": 2, "f": 0.1, "b": True, "s": "mean", "l": [1, 2], "d": {"a": 1}, "n": None}


def value_at(key):
    return CONFIG.get(key, ABSENT)


@pytest.mark.parametrize("key, text", [
    ("i", "choice(1, 2, 3)"), ("i", "range(1, 4)"), ("i", "int(interval(1, 5))"), ("i", "tag(log, int(interval(1, 8)))"),
    ("i", "7"), ("f", "interval(0, 1)"), ("f", "range(1, 4)"), ("f", "choice(1, 0.5)"), ("f", "3"),
    ("b", "choice(true, false)"), ("s", "choice(mean, cls)"), ("s", "choice('1', 'true')"),
    ("l", "choice([1], [2, 3])"), ("d", "choice({a: 1}, {a: 2})"), ("n", "choice(1, a, [2])"),
    ("i", "null"), ("f", "${i}"), ("+new", "choice(1, a)"),
])
def test_values_that_fit_the_key(key, text):
    space = parse_space({key: text}, value_at=value_at)
    for seed in range(3):   # what a trial is given reads back, through Hydra, as a value of the key's type
        (line,) = space.suggest(optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed)).ask())
        written, value = parse_back(line)
        assert written == key.lstrip("+")
        assert _fits(CONFIG.get(key.lstrip("+"), ABSENT), value), (line, value)


def _fits(held, value) -> bool:
    if held is ABSENT or held is None or value is None or (isinstance(value, str) and value.startswith("${")):
        return True
    if isinstance(held, bool) or isinstance(held, int):
        return type(value) is type(held)
    if isinstance(held, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, type(held))


@pytest.mark.parametrize("key, text, message", [
    ("f", "choice(0.1, high)", "high does not fit f, which holds a number (0.1); allowed: numbers"),
    ("f", "choice(0.1, true)", "true does not fit f, which holds a number (0.1)"),
    ("i", "interval(1, 4)", "floats from 1.0 to 4.0 do not fit i, which holds an integer (2); allowed: integers"),
    ("i", "range(1, 4.5)", "floats from 1.0 to 4.0 do not fit i"),
    ("i", "choice(1, 2.5)", "2.5 does not fit i, which holds an integer (2)"),
    ("i", "choice(1, '2')", "'2' does not fit i"),
    ("b", "range(0, 1)", "integers from 0 to 1 do not fit b, which holds true or false (true); allowed: choice(true, false)"),
    ("b", "choice(true, yes)", "yes does not fit b"),
    ("s", "choice(mean, 3)", "3 does not fit s, which holds a string (mean); allowed: strings"),
    ("s", "interval(0, 1)", "floats from 0.0 to 1.0 do not fit s"),
    ("l", "choice([1], 2)", "2 does not fit l, which holds a list ([1,2]); allowed: lists"),
    ("d", "choice({a: 1}, 1)", "1 does not fit d, which holds a mapping ({a:1})"),
    ("f", "high", "high does not fit f"),
    ("nope", "choice(1, 2)", "no such key in the composed config"),
])
def test_values_that_do_not_fit_the_key_are_refused(key, text, message):
    with pytest.raises(ConfigError) as info:
        parse_space({key: text}, value_at=value_at)
    assert str(info.value).startswith(f"sweep.params.{key}: {text}: ") and message in str(info.value)
    assert "\n" not in str(info.value)
