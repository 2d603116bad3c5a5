"""A sweep's search space: Hydra sweep grammar in, Optuna distributions and override strings out.

Each entry of a sweep's ``params:`` block means exactly what it means to the Hydra Optuna sweeper plugin
(``create_optuna_distribution_from_override`` in hydra_plugins/hydra_optuna_sweeper/_impl.py):

    optimizer.lr: tag(log, interval(1e-4, 1e-1))        -> FloatDistribution(0.0001, 0.1, log=True)
    model.dropout: interval(0, 0.5)                     -> FloatDistribution(0.0, 0.5)   (Hydra makes the bounds floats)
    model.width: int(interval(16, 256))                 -> IntDistribution(16, 256)
    data.batch_size: tag(log, int(interval(16, 256)))   -> IntDistribution(16, 256, log=True)
    trainer.max_epochs: range(1, 4)                     -> IntDistribution(1, 4)         (stop is INCLUDED)
    model.width: range(16, 64, 16)                      -> IntDistribution(16, 64, step=16)
    model.l2: range(0, 1, 0.25)                         -> FloatDistribution(0.0, 1.0, step=0.25)
    data.batch_size: choice(32, 64, 128)                -> CategoricalDistribution((32, 64, 128))
    model.depth: shuffle(range(1, 4))                   -> CategoricalDistribution((1, 2, 3))  (Hydra's range: stop excluded)
    model.backbone.channels: choice([16, 32], [32, 64]) -> CategoricalDistribution(("[16,32]", "[32,64]"))
    optimizer: choice(adam, sgd)                        -> a config group choice
    model.l1: 0.001                                     -> fixed: the same override in every trial

- ``range(start, stop[, step])`` is Int/FloatDistribution(start, stop, step): a float among the three makes
  it a FloatDistribution. When stop is off the grid, high is the last grid value below it (Optuna's rule).
- ``shuffle(...)`` makes a categorical of the values Hydra's iteration gives (for a range: stop excluded),
  kept in the order written: the plugin's random order cannot be resumed by several workers.
- A list or dict choice is stored as the plugin stores it: its override text ("[16,32]").

Refused (ConfigError, one line) where the plugin would fail or silently drop what was written: a tag
other than log, ``tag(log, range(...))`` and ``tag(log, choice(...))`` (the plugin ignores the tag), a
step <= 0, start > stop, ``glob()``. The plugin's older ``search_space:`` form is read in config/plugin_sweeper.py.

When the composed config is given (value_at), every value a param can take must fit the type of the
key's value there: an int key takes ints, a float key numbers, a bool key true/false, a string key
strings, a list key lists, a dict key dicts; a null or absent key anything.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep, IntervalSweep, Override, QuotedString, RangeSweep, Sweep, Transformer,
)
from hydra.errors import HydraException
from omegaconf import DictConfig, ListConfig, OmegaConf
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from sweeplab.config.overrides import hydra_text
from sweeplab.errors import ConfigError

ALLOWED = ("choice(a, b, ...), range(start, stop[, step]) (stop included), interval(low, high), "
           "int(interval(low, high)), tag(log, interval(...)) or a fixed value")

# value_at's answer for a key the composed config does not have.
ABSENT = object()


@dataclass(frozen=True)
class SearchSpace:
    """What each trial samples (distributions) and what every trial shares (fixed)."""

    distributions: dict[str, BaseDistribution]
    fixed: dict[str, str]
    # Override text of each categorical choice, by index: how a sampled choice is written back.
    choice_texts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Every params entry as written, for describe().
    grammar: dict[str, str] = field(default_factory=dict)

    def suggest(self, trial: optuna.Trial) -> list[str]:
        """Sample every param (named by its key) and return the trial's Hydra overrides, fixed ones included."""
        params = {}
        for key, dist in self.distributions.items():
            if isinstance(dist, CategoricalDistribution):
                params[key] = trial.suggest_categorical(key, dist.choices)
            elif isinstance(dist, IntDistribution):
                params[key] = trial.suggest_int(key, dist.low, dist.high, step=dist.step, log=dist.log)
            else:
                params[key] = trial.suggest_float(key, dist.low, dist.high, step=dist.step, log=dist.log)
        return self.overrides_for(params)

    def overrides_for(self, params: Mapping[str, Any]) -> list[str]:
        """The overrides for already-sampled params (e.g. study.best_params), fixed ones included."""
        missing = [key for key in self.distributions if key not in params]
        if missing:
            raise ConfigError(f"no value for swept param(s) {', '.join(missing)}")
        swept = [f"{key}={self._text(key, dist, params[key])}" for key, dist in self.distributions.items()]
        return swept + [f"{key}={text}" for key, text in self.fixed.items()]

    def describe(self) -> dict[str, str]:
        """key -> the params entry as written, for logging the space."""
        return dict(self.grammar)

    def _text(self, key: str, dist: BaseDistribution, value: Any) -> str:
        # Cast by distribution so an int param is written as an int and a float param as a float.
        if isinstance(dist, IntDistribution):
            return str(int(value))
        if isinstance(dist, FloatDistribution):
            return repr(float(value))
        try:
            index = int(dist.to_internal_repr(value))
        except ValueError:
            raise ConfigError(f"{key}={value!r} is not one of the choices {list(dist.choices)}") from None
        if key in self.choice_texts:
            return self.choice_texts[key][index]
        return _hydra_text(dist.choices[index])


def parse_space(params: Mapping[str, Any], groups: Collection[str] = (),
                known_keys: Callable[[str], bool] | None = None,
                value_at: Callable[[str], Any] | None = None) -> SearchSpace:
    """Parse a sweep's params block; raise ConfigError (one line, naming the key) on bad input.

    groups: names of Hydra config groups; a key among them takes only choice(option, ...).
    known_keys: True when a dotted key exists in the composed config; when given, other keys are errors.
    value_at: the composed config's value at a dotted key (ABSENT when it has none); when given, other keys
      are errors and every value a param can take must fit the type of the key's value.
    """
    if value_at is not None and known_keys is None:
        def known_keys(key: str) -> bool:
            return value_at(key) is not ABSENT
    if isinstance(params, DictConfig):
        # Keep ${...} as written: Hydra resolves it in each trial's own config.
        params = OmegaConf.to_container(params, resolve=False)
    distributions, fixed, choice_texts, grammar = {}, {}, {}, {}
    for key, value in params.items():
        text = None
        try:
            text = value if isinstance(value, str) else _hydra_text(_plain(value))
            override = _parse(key, text)
            is_group = override.key_or_group in groups
            _check_key(override, is_group, known_keys)
            if not override.is_sweep_override():
                if is_group:
                    raise ValueError("a config group takes choice(option, ...) here; "
                                     "a fixed group choice belongs outside the sweep's params")
                fixed[key] = text
                values = [_plain(override.value())]
            else:
                distributions[key], texts, values = _distribution(override.value(), is_group)
                if texts is not None:
                    choice_texts[key] = texts
            if value_at is not None and not is_group:
                _check_fits(override.key_or_group, value_at(override.key_or_group), distributions.get(key), values)
        except ValueError as e:
            shown = key if text is None else f"{key}: {text}"
            raise ConfigError(_one_line(f"sweep.params.{shown}: {e}")) from None
        grammar[key] = text
    return SearchSpace(distributions, fixed, choice_texts, grammar)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _parse(key: str, text: str) -> Override:
    try:
        [override] = OverridesParser.create().parse_overrides([f"{key}={text}"])
    except HydraException as e:
        # Hydra's message repeats the input and adds a docs link; keep only the reason.
        reason = [line for line in str(e).splitlines()
                  if line.strip(" ^") and not line.startswith(("Error parsing override", "See https://"))]
        raise ValueError(f"not valid sweep grammar ({'; '.join(reason)}); allowed: {ALLOWED}") from None
    if override.is_delete() or override.get_key_element() != key:
        raise ValueError("the key must be a dotted config key or a config group name")
    return override


def _check_key(override: Override, is_group: bool, known_keys: Callable[[str], bool] | None) -> None:
    adds = override.is_add() or override.is_force_add()
    if known_keys is None or is_group or adds or known_keys(override.key_or_group):
        return
    raise ValueError("no such key in the composed config; `sweeplab train --print-config` lists the keys, "
                     f"and +{override.key_or_group} adds a new one")


def _distribution(sweep: Any, is_group: bool) -> tuple[BaseDistribution, tuple[str, ...] | None, list]:
    """The distribution, the override text of each choice (categoricals), and the plain values it can give
    (the bounds for int/float distributions)."""
    if not isinstance(sweep, (ChoiceSweep, RangeSweep, IntervalSweep)):
        raise ValueError(f"{type(sweep).__name__.lower()}() cannot be sampled; allowed: {ALLOWED}")
    unknown = sweep.tags - {"log"}
    if unknown:
        raise ValueError(f"unknown tag {', '.join(sorted(unknown))}; only tag(log, interval(...)) is understood")
    log = "log" in sweep.tags
    if is_group and not isinstance(sweep, ChoiceSweep):
        raise ValueError("a config group takes choice(option, ...), not range() or interval()")
    if isinstance(sweep, ChoiceSweep):
        if log:
            raise ValueError("a log scale applies to interval() only (the Optuna sweeper plugin ignores "
                             "tag(log, choice(...)))")
        return _categorical(sweep.list, is_group)
    if log and not isinstance(sweep, IntervalSweep):
        raise ValueError("the Optuna sweeper plugin ignores tag(log, range(...)) and samples the range linearly; "
                         "write range(start, stop) for that, or tag(log, int(interval(low, high))) for an "
                         "integer log scale")
    if isinstance(sweep, RangeSweep):
        if sweep.shuffle:
            return _categorical(_range_values(sweep), is_group)
        dist = _range(sweep)
    else:
        dist = _interval(sweep, log)
    return dist, None, [dist.low, dist.high]


def _categorical(values: list, is_group: bool) -> tuple[CategoricalDistribution, tuple[str, ...], list]:
    choices, texts, plain = [], [], []
    for raw in values:
        if isinstance(raw, Sweep):
            raise ValueError("a choice cannot hold another sweep; its values are scalars, lists or dicts")
        value = _plain(raw)
        if is_group and not isinstance(value, str):
            raise ValueError("a config group choice lists option names, e.g. choice(adam, sgd)")
        # A list or dict is stored as the text the plugin stores (Hydra's own override text).
        text = Transformer.str(raw) if isinstance(raw, (list, dict)) else _hydra_text(value)
        stored = value if value is None or isinstance(value, (bool, int, float, str)) else text
        if any(stored == seen for seen in choices):
            # Optuna finds a choice by ==, so 1, 1.0 and true (or a list and its text) are one choice.
            raise ValueError(f"the choice {text} repeats an earlier one as Optuna stores choices "
                             "(1, 1.0 and true are equal; a list is stored as its text); list each value once")
        choices.append(stored)
        texts.append(text)
        plain.append(value)
    return CategoricalDistribution(choices), tuple(texts), plain


def _range_values(sweep: RangeSweep) -> list:
    """What shuffle(range(...)) gives in the plugin: Hydra's range iteration (stop excluded), as written."""
    _check_finite(sweep.start, sweep.stop, sweep.step)
    if sweep.step == 0:
        raise ValueError("the range step must not be 0")
    values = list(RangeSweep(start=sweep.start, stop=sweep.stop, step=sweep.step).range())
    if not values:
        raise ValueError("shuffle(range(start, stop[, step])) reaches no value: Hydra's range leaves out stop")
    return values


def _range(sweep: RangeSweep) -> BaseDistribution:
    start, stop, step = sweep.start, sweep.stop, sweep.step
    _check_finite(start, stop, step)
    if step <= 0:
        raise ValueError(f"the range step must be > 0, got {step}")
    if start > stop:
        raise ValueError("range(start, stop[, step]) needs start <= stop (stop is included)")
    # The plugin's own construction; Optuna lowers an off-grid stop to the last grid value (and would warn).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if any(isinstance(x, float) for x in (start, stop, step)):
            return FloatDistribution(float(start), float(stop), step=float(step))
        return IntDistribution(int(start), int(stop), step=int(step))


def _interval(sweep: IntervalSweep, log: bool) -> BaseDistribution:
    low, high = sweep.start, sweep.end
    _check_finite(low, high)
    if low > high:
        raise ValueError("interval(low, high) needs low <= high")
    if log and low <= 0:
        raise ValueError("a log scale needs low > 0")
    # Hydra makes interval() bounds floats; int(interval(...)) keeps ints, and then so does the plugin.
    if isinstance(low, int) and isinstance(high, int):
        return IntDistribution(low, high, log=log)
    return FloatDistribution(low, high, log=log)


def _check_finite(*numbers: float) -> None:
    if not all(math.isfinite(x) for x in numbers):
        raise ValueError("the bounds and step must be finite numbers")


# The kind of value a key holds: (what it is called, what fits it, what a sweep may give it).
_KINDS = (
    (bool, "true or false", lambda v: isinstance(v, bool), "choice(true, false)"),
    (int, "an integer", lambda v: isinstance(v, int) and not isinstance(v, bool),
     "integers: choice() of integers, range() with integer bounds and step, int(interval(low, high))"),
    (float, "a number", _is_number, "numbers: choice() of numbers, range(), interval()"),
    (str, "a string", lambda v: isinstance(v, str), "strings: choice() of strings"),
    ((list, ListConfig), "a list", lambda v: isinstance(v, list), "lists: choice([...], [...])"),
    ((dict, DictConfig), "a mapping", lambda v: isinstance(v, dict), "mappings: choice({...}, {...})"),
)


def _check_fits(key: str, current: Any, dist: BaseDistribution | None, values: list) -> None:
    """Every value the param can take must fit the kind of value the composed config holds at key."""
    if current is None or current is ABSENT:
        return
    for kinds, name, fits, allowed in _KINDS:
        if isinstance(current, kinds):
            break
    else:
        return
    shown = _hydra_text(OmegaConf.to_container(current) if isinstance(current, (ListConfig, DictConfig))
                        else current)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    holds = f"{key}, which holds {name} ({shown})"
    if isinstance(dist, (IntDistribution, FloatDistribution)):
        numbers, sample = ("integers", 1) if isinstance(dist, IntDistribution) else ("floats", 0.5)
        if not fits(sample):
            raise ValueError(f"{numbers} from {_hydra_text(dist.low)} to {_hydra_text(dist.high)} do not fit "
                             f"{holds}; allowed: {allowed} (or null)")
        return
    for value in values:
        if value is None or (isinstance(value, str) and "${" in value):
            continue  # null fits any key; an interpolation is resolved (and checked) in the trial's config
        if not fits(value):
            raise ValueError(f"{_hydra_text(value)} does not fit {holds}; allowed: {allowed} (or null)")


def _plain(value: Any) -> Any:
    """Hydra's parsed value (or a YAML value) as plain Python: quoted strings become str, tuples lists."""
    if isinstance(value, QuotedString):
        return value.text
    if isinstance(value, (list, tuple)):
        return [_plain(x) for x in value]
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value


def _hydra_text(value: Any) -> str:
    try:
        return hydra_text(value)
    except ValueError as e:
        raise ValueError(f"{e}; allowed: {ALLOWED}") from None


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())
