"""Sweep files written for the Hydra Optuna sweeper plugin, read into sweeplab's `sweep:` node.

A file with `defaults: [override /hydra/sweeper: optuna]` and `hydra.sweeper.{params, sampler, direction,
n_trials, n_jobs, storage, study_name}` (or the older `hydra.sweeper.search_space`) runs unchanged:
conf/hydra/sweeper/ holds the plugin's config nodes, so it composes without the plugin, and this module
turns the composed `hydra.sweeper` node into the `sweep:` node every sweeplab command reads. Each params
expression keeps the plugin's meaning (sweep/space.py). What sweeplab cannot honour is one ConfigError.

    hydra.sweeper.params / search_space -> sweep.params (search_space entries first; params win a key)
    hydra.sweeper.sampler               -> sweep.sampler, instantiated as it is (not the grid sampler)
    direction, n_trials, storage        -> the same sweep.* keys (storage null: mlruns/optuna.journal)
    study_name                          -> sweep.study_name; null: the file's name
    n_jobs                              -> sweep.workers
    max_failure_rate: 0.0               -> sweep.max_consecutive_failures: 1 (the plugin stops at a failure)
    optimized_metric (top level)        -> sweep.metric, objective last (lightning-hydra-template's
                                           train.py returns the metric's last logged value)
    (no pruner in the plugin)           -> optuna.pruners.NopPruner; pruner=NAME adds one
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sweeplab.config.overrides import hydra_text
from sweeplab.errors import ConfigError

TARGET = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
HONOURED = ("_target_", "sampler", "direction", "storage", "study_name", "n_trials", "n_jobs", "max_failure_rate",
            "params", "search_space", "custom_search_space")
NO_PRUNER = {"_target_": "optuna.pruners.NopPruner"}


def uses_plugin(choices: dict) -> bool:
    """True when the composed config chose the plugin's sweeper (hydra/sweeper=optuna)."""
    return choices.get("hydra/sweeper") == "optuna"


def to_sweep_node(cfg: DictConfig, choices: dict) -> DictConfig:
    """The `sweep:` node for a config composed with hydra/sweeper=optuna (cfg still holds `hydra`).

    sweeplab's own sweep.* keys set on the command line (+sweep.timeout=600, sampler=NAME, pruner=NAME)
    win over those read from the plugin's node."""
    node = cfg.hydra.sweeper
    unknown = [k for k in node if k not in HONOURED]
    if unknown:
        raise ConfigError(f"hydra.sweeper.{unknown[0]}: not a key of the Optuna sweeper plugin that sweeplab "
                          f"reads; allowed: {', '.join(HONOURED)}")
    if node.get("_target_") != TARGET:
        raise ConfigError(f"hydra.sweeper._target_={node.get('_target_')}: sweeplab reads only the Optuna sweeper "
                          f"plugin's config ({TARGET})")
    if node.get("custom_search_space"):
        raise ConfigError(f"hydra.sweeper.custom_search_space={node.custom_search_space}: sweeplab does not call "
                          "a function on each trial; write every param in hydra.sweeper.params")
    rate = node.get("max_failure_rate", 0.0)
    if rate != 0.0:
        raise ConfigError(f"hydra.sweeper.max_failure_rate={rate}: sweeplab honours only 0.0 (stop at the first "
                          "failed trial); it stops after +sweep.max_consecutive_failures=N failures in a row instead")
    for key in ("n_trials", "n_jobs"):
        value = node.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"hydra.sweeper.{key}={value}: must be an integer of at least 1")
    sampler = _container(node, "sampler")
    if not isinstance(sampler, dict) or "_target_" not in sampler:
        raise ConfigError("hydra.sweeper.sampler must name a class with _target_, e.g. optuna.samplers.TPESampler")
    if sampler["_target_"] == "optuna.samplers.GridSampler" or sampler.get("_partial_"):
        raise ConfigError("hydra.sweeper.sampler: the plugin's grid sampler leaves out each range's stop, which "
                          "its distributions include; sweeplab does not copy that: use sampler=grid "
                          "(every value of each choice() and range(), stop included)")
    own = cfg.get("sweep") or {}
    if "params" in own:
        raise ConfigError(f"sweep={choices.get('sweep')} and a file for the Optuna sweeper plugin (hydra/sweeper="
                          "optuna) both define the sweep; select one of them")
    params = {}
    if node.get("search_space"):
        params.update(legacy_params(node.search_space))
    params.update(_container(node, "params", resolve=False) or {})
    metric = cfg.get("optimized_metric")
    if OmegaConf.is_list(metric):
        metric = list(metric)
    if metric is None and "metric" not in own:
        raise ConfigError("a file for the Optuna sweeper plugin needs the metric to optimise: optimized_metric: "
                          "NAME at the top level (as lightning-hydra-template has it) or +sweep.metric=NAME")
    direction = node.get("direction")
    sweep: dict[str, Any] = {
        "metric": metric, "direction": list(direction) if OmegaConf.is_list(direction) else direction,
        "objective": "last", "n_trials": node.n_trials, "workers": node.n_jobs, "devices_per_trial": 1,
        "timeout": None, "storage": node.get("storage"),
        "study_name": node.get("study_name") or choices.get("hparams_search") or choices.get("sweep"),
        "max_consecutive_failures": 1, "register_as": None, "params": params,
        "sampler": sampler, "pruner": NO_PRUNER,
    }
    for key, value in OmegaConf.to_container(own, resolve=False).items() if own else ():
        sweep[key] = value
    return OmegaConf.create(sweep)


def _container(node: DictConfig, key: str, resolve: bool = True) -> Any:
    try:
        value = node.get(key)
        return OmegaConf.to_container(value, resolve=resolve) if isinstance(value, DictConfig) else value
    except OmegaConfBaseException as e:
        raise ConfigError(f"hydra.sweeper.{key}: {str(e).splitlines()[0]}") from None


def legacy_params(search_space: Mapping[str, Any]) -> dict[str, str]:
    """The plugin's older ``hydra.sweeper.search_space`` form, as params grammar with the same distributions.

    Its ``create_optuna_distribution_from_config``: categorical -> choices; int -> IntDistribution(int(low),
    int(high), step=int(step) or 1), or log=True (step ignored); float -> FloatDistribution(low, high), with
    step, or log=True (step ignored).
    """
    if isinstance(search_space, DictConfig):
        search_space = OmegaConf.to_container(search_space, resolve=True)
    params = {}
    for key, spec in search_space.items():
        where = f"hydra.sweeper.search_space.{key}"
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where}: expected a mapping with type: int, float or categorical "
                              "(and low/high/step/log or choices)")
        unknown = set(spec) - {"type", "choices", "low", "high", "log", "step"}
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}; "
                              "allowed: type, choices, low, high, log, step")
        kind, log, step = spec.get("type"), spec.get("log", False), spec.get("step")
        if kind == "categorical":
            choices = spec.get("choices")
            if not isinstance(choices, list) or not choices:
                raise ConfigError(f"{where}: type categorical needs choices: [a, b, ...]")
            if None in choices:
                raise ConfigError(f"{where}: a null choice cannot be written in Hydra's sweep grammar; "
                                  "give the key a value that stands for it")
            params[str(key)] = "choice(" + ", ".join(hydra_text(c) for c in choices) + ")"
            continue
        if kind not in ("int", "float"):
            raise ConfigError(f"{where}.type={kind}: allowed: int, float, categorical")
        low, high = spec.get("low"), spec.get("high")
        if not all(_is_number(x) for x in (low, high)) or not (step is None or _is_number(step)) \
                or not isinstance(log, bool):
            raise ConfigError(f"{where}: type {kind} needs numbers low and high (and optionally a number step, "
                              "log: true or false)")
        if kind == "int":
            low, high = int(low), int(high)
            params[str(key)] = (f"tag(log, int(interval({low}, {high})))" if log
                                else f"range({low}, {high}, {int(step) if step is not None else 1})")
        elif log:
            params[str(key)] = f"tag(log, interval({_float_text(low)}, {_float_text(high)}))"
        elif step is not None:
            params[str(key)] = f"range({_float_text(low)}, {_float_text(high)}, {_float_text(step)})"
        else:
            params[str(key)] = f"interval({_float_text(low)}, {_float_text(high)})"
    return params


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _float_text(x: float) -> str:
    return repr(float(x))
