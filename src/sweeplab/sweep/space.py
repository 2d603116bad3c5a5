"""A sweep's search space: Hydra sweep grammar in, Optuna distributions and override strings out.

Each entry of a sweep's ``params:`` block is written as the hydra-optuna-sweeper plugin wrote it:

    optimizer.lr: tag(log, interval(1e-4, 1e-1))        -> FloatDistribution(0.0001, 0.1, log=True)
    data.batch_size: choice(32, 64, 128)                -> CategoricalDistribution((32, 64, 128))
    model.backbone.channels: choice([16, 32], [32, 64]) -> CategoricalDistribution(("[16,32]", "[32,64]"))
    trainer.max_epochs: range(1, 4)                     -> IntDistribution(1, 3)
    optimizer: choice(adam, sgd)                        -> a config group choice
    model.l1: 0.001                                     -> fixed: the same override in every trial

The mapping follows the plugin's ``create_optuna_distribution_from_override``, except:

- ``range(start, stop[, step])`` keeps Hydra's meaning: stop is EXCLUSIVE (``range(1, 4)`` is 1, 2, 3),
  so the distribution's high is the last value the range reaches, not stop. It is an IntDistribution
  when start, stop and step are all ints, else a FloatDistribution with that step.
  ``tag(log, range(a, b))`` is an int log scale (Optuna allows a log scale only with step 1).
- ``interval(low, high)`` is always a FloatDistribution: Hydra makes interval bounds floats.
- Optuna's storage holds only None/bool/int/float/str, so a list or dict choice is stored as its
  override text ("[16,32]") and written back verbatim; scalar choices are stored as themselves.
- ``shuffle(...)`` is ignored: it only reorders a grid, and a sampler draws in its own order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep, IntervalSweep, Override, Quote, QuotedString, RangeSweep, Sweep, Transformer, ValueType,
)
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from sweeplab.errors import ConfigError

ALLOWED = ("choice(a, b, ...), range(start, stop[, step]), interval(low, high), "
           "tag(log, interval(low, high)) or a fixed value")


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
                known_keys: Callable[[str], bool] | None = None) -> SearchSpace:
    """Parse a sweep's params block; raise ConfigError (one line, naming the key) on bad input.

    groups: names of Hydra config groups; a key among them takes only choice(option, ...).
    known_keys: True when a dotted key exists in the composed config; when given, other keys are errors.
    """
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
            else:
                distributions[key], texts = _distribution(override.value(), is_group)
                if texts is not None:
                    choice_texts[key] = texts
        except ValueError as e:
            shown = key if text is None else f"{key}: {text}"
            raise ConfigError(_one_line(f"sweep.params.{shown}: {e}")) from None
        grammar[key] = text
    return SearchSpace(distributions, fixed, choice_texts, grammar)


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


def _distribution(sweep: Any, is_group: bool) -> tuple[BaseDistribution, tuple[str, ...] | None]:
    if not isinstance(sweep, (ChoiceSweep, RangeSweep, IntervalSweep)):
        raise ValueError(f"{type(sweep).__name__.lower()}() cannot be sampled; allowed: {ALLOWED}")
    unknown = sweep.tags - {"log"}
    if unknown:
        raise ValueError(f"unknown tag {', '.join(sorted(unknown))}; only tag(log, ...) is understood")
    log = "log" in sweep.tags
    if is_group and not isinstance(sweep, ChoiceSweep):
        raise ValueError("a config group takes choice(option, ...), not range() or interval()")
    if isinstance(sweep, ChoiceSweep):
        if log:
            raise ValueError("a log scale applies to interval() or range(), not choice()")
        return _categorical(sweep.list, is_group)
    if isinstance(sweep, RangeSweep):
        return _range(sweep, log), None
    return _interval(sweep, log), None


def _categorical(values: list, is_group: bool) -> tuple[CategoricalDistribution, tuple[str, ...]]:
    choices, texts = [], []
    for raw in values:
        if isinstance(raw, Sweep):
            raise ValueError("a choice cannot hold another sweep; its values are scalars, lists or dicts")
        value = _plain(raw)
        if is_group and not isinstance(value, str):
            raise ValueError("a config group choice lists option names, e.g. choice(adam, sgd)")
        text = _hydra_text(value)
        stored = value if value is None or isinstance(value, (bool, int, float, str)) else text
        if any(stored == seen for seen in choices):
            # Optuna finds a choice by ==, so 1, 1.0 and true (or a list and its text) are one choice.
            raise ValueError(f"the choice {text} repeats an earlier one as Optuna stores choices "
                             "(1, 1.0 and true are equal; a list is stored as its text); list each value once")
        choices.append(stored)
        texts.append(text)
    return CategoricalDistribution(choices), tuple(texts)


def _range(sweep: RangeSweep, log: bool) -> BaseDistribution:
    start, stop, step = sweep.start, sweep.stop, sweep.step
    _check_finite(start, stop, step)
    if step <= 0:
        raise ValueError(f"the range step must be > 0, got {step}")
    # Hydra's stop is exclusive: high is the last value reached. Decimal arithmetic on the numbers
    # as written keeps range(0, 1, 0.1) ending at exactly 0.9.
    first, end, size = (Decimal(repr(x)) for x in (start, stop, step))
    count = ((end - first) / size).to_integral_value(rounding=ROUND_CEILING)
    if count < 1:
        raise ValueError("the range reaches no value; range(start, stop[, step]) needs start < stop "
                         "(stop is exclusive)")
    high = first + (count - 1) * size
    is_int = all(isinstance(x, int) for x in (start, stop, step))
    if log:
        if not is_int or step != 1:
            raise ValueError("a log scale over range() needs int bounds and step 1; "
                             "use tag(log, interval(low, high)) for floats")
        if start <= 0:
            raise ValueError("a log scale needs low > 0")
        return IntDistribution(start, int(high), log=True)
    if is_int:
        return IntDistribution(start, int(high), step=step)
    return FloatDistribution(float(start), float(high), step=float(step))


def _interval(sweep: IntervalSweep, log: bool) -> FloatDistribution:
    low, high = sweep.start, sweep.end
    _check_finite(low, high)
    if low > high:
        raise ValueError("interval(low, high) needs low <= high")
    if log and low <= 0:
        raise ValueError("a log scale needs low > 0")
    return FloatDistribution(low, high, log=log)


def _check_finite(*numbers: float) -> None:
    if not all(math.isfinite(x) for x in numbers):
        raise ValueError("the bounds and step must be finite numbers")


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
    """Override text that Hydra parses back to the same value with the same type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return _string_text(value)
    if isinstance(value, list):
        return "[" + ",".join(_hydra_text(x) for x in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{Transformer.str(k)}:{_hydra_text(v)}" for k, v in value.items()) + "}"
    raise ValueError(f"a {type(value).__name__} value cannot be an override; allowed: {ALLOWED}")


def _string_text(value: str) -> str:
    # Quote only when the bare text would read back as something else ("1", "true", "null", "a,b"...).
    bare = Transformer.str(value)
    try:
        [override] = OverridesParser.create().parse_overrides([f"x={bare}"])
        back = override.value()
        if override.value_type is ValueType.ELEMENT and isinstance(back, str) and back == value:
            return bare
    except HydraException:
        pass
    return QuotedString(text=value, quote=Quote.single).with_quotes()


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())
