"""Search space: Hydra sweep grammar -> Optuna distributions -> override strings Hydra reads back."""

import math

import optuna
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from sweeplab.errors import ConfigError
from sweeplab.sweep.space import SearchSpace, parse_space

GROUPS = {"optimizer", "model", "data", "trainer", "scheduler"}

PARAMS = {
    "optimizer.lr": "tag(log, interval(1e-4, 1e-1))",
    "optimizer.weight_decay": "tag(log, interval(1e-6, 1e-2))",
    "data.batch_size": "choice(32, 64, 128)",
    "model.dropout": "interval(0.0, 0.5)",
    "model.backbone.channels": "choice([16, 32], [32, 64])",
    "trainer.max_epochs": "range(1, 4)",
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


@pytest.mark.parametrize("text, expected", [
    ("interval(0.0, 0.5)", FloatDistribution(0.0, 0.5)),
    ("interval(1, 10)", FloatDistribution(1.0, 10.0)),  # Hydra makes interval bounds floats
    ("tag(log, interval(1e-4, 1e-1))", FloatDistribution(1e-4, 0.1, log=True)),
    ("range(1, 4)", IntDistribution(1, 3)),  # stop is exclusive
    ("range(5)", IntDistribution(0, 4)),
    ("range(0, 10, 3)", IntDistribution(0, 9, step=3)),
    ("range(0, 11, 5)", IntDistribution(0, 10, step=5)),
    ("range(2, 3)", IntDistribution(2, 2)),
    ("range(0, 1, 0.1)", FloatDistribution(0.0, 0.9, step=0.1)),
    ("range(0.1, 1.0, 0.2)", FloatDistribution(0.1, 0.9, step=0.2)),
    ("range(1, 4.5)", FloatDistribution(1.0, 4.0, step=1.0)),
    ("tag(log, range(1, 100))", IntDistribution(1, 99, log=True)),
    ("shuffle(range(1, 4))", IntDistribution(1, 3)),
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
        assert type(values["trainer.max_epochs"]) is int and values["trainer.max_epochs"] in (1, 2, 3)
        assert values["model.backbone.channels"] in ([16, 32], [32, 64])
        assert values["optimizer"] in ("adam", "sgd")
        study.tell(trial, values["optimizer.lr"])


def test_float_range_values_stay_on_the_grid():
    space = parse_space({"x": "range(0, 1, 0.1)"})
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
    ({"trainer.max_epochs": "range(4, 1)"}, {}, "the range reaches no value"),
    ({"trainer.max_epochs": "range(3, 3)"}, {}, "the range reaches no value"),
    ({"optimizer.lr": "tag(log, interval(0, 0.1))"}, {},
     "sweep.params.optimizer.lr: tag(log, interval(0, 0.1)): a log scale needs low > 0"),
    ({"optimizer.lr": "tag(log, interval(-1, 0.1))"}, {}, "a log scale needs low > 0"),
    ({"trainer.max_epochs": "tag(log, range(0, 4))"}, {}, "a log scale needs low > 0"),
    ({"trainer.max_epochs": "tag(log, range(1, 9, 2))"}, {}, "a log scale over range() needs int bounds and step 1"),
    ({"trainer.max_epochs": "range(1, 4, 0)"}, {}, "the range step must be > 0"),
    ({"trainer.max_epochs": "range(4, 1, -1)"}, {}, "the range step must be > 0"),
    ({"x": "interval(0, inf)"}, {}, "must be finite"),
    ({"x": "tag(foo, interval(0, 1))"}, {}, "unknown tag foo"),
    ({"x": "tag(log, choice(1, 2))"}, {}, "a log scale applies to interval() or range()"),
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
