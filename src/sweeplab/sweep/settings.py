"""The `sweep:` node of a composed config, checked and turned into objects before anything is written."""

from __future__ import annotations

import math
from dataclasses import dataclass

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import CategoricalDistribution
from optuna.samplers import GridSampler

from sweeplab.errors import ConfigError, cause_line
from sweeplab.sweep.placement import AUTO
from sweeplab.sweep.space import ABSENT, SearchSpace, parse_space
from sweeplab.sweep.storage import StorageSpec, parse_storage
from sweeplab.sweep.warm_start_value import WarmStart, parse as parse_warm_start

DIRECTIONS = ("maximize", "minimize")
OBJECTIVES = ("best", "last")   # a trial's value: its best epoch's sweep.metric, or its last (worker/objective.py)
RESUME = ("auto", "force")


@dataclass
class SweepSettings:
    study_name: str
    metrics: list[str]               # one metric, or several for a multi-objective sweep
    directions: list[str]
    n_trials: int
    workers: int | str               # a number of local worker processes, or "auto" (see placement.py)
    timeout: float | None
    max_consecutive_failures: int
    storage: StorageSpec
    space: SearchSpace
    sampler_cfg: DictConfig
    pruner_cfg: DictConfig
    register_as: str | None = None     # register the best trial's model under this name at the end
    artifact_location: str | None = None   # tracking.artifact_location, for the sweep's experiment
    devices_per_trial: int = 1         # GPUs each trial runs on (on CPU: processes, e.g. trainer=ddp_cpu)
    gpus: list[str] | None = None      # the GPUs local workers may use; set by the driver's checks
    objective: str = "best"            # best or last: which epoch's sweep.metric a trial reports
    resume: str = "auto"               # auto: continue only a study of the same definition; force: any
    warm_start: WarmStart | None = None   # seed a new study with an earlier study's trials (warm_start.py)
    asked_trials: int | None = None    # sweep.n_trials as given, when a grid smaller than it lowered n_trials

    @property
    def multi_objective(self) -> bool:
        return len(self.metrics) > 1

    @property
    def mlflow_experiment(self) -> str:
        return f"sweep-{self.study_name}"

    def sampler(self, seed_offset: int = 0):
        """The sampler; a seeded one gets `seed + seed_offset`, so that parallel workers (and a resumed
        worker) do not replay the same random draws."""
        extra = {}
        if seed_offset and self.sampler_cfg.get("seed") is not None:
            extra["seed"] = self.sampler_cfg.seed + seed_offset
        if "search_space" in self.sampler_cfg and self.sampler_cfg.search_space is None:
            extra["search_space"] = _grid(self.space)
        return _instantiate(self.sampler_cfg, "sweep.sampler", **extra)

    def pruner(self):
        return _instantiate(self.pruner_cfg, "sweep.pruner")


def read_settings(cfg: DictConfig, choices: dict) -> SweepSettings:
    node = cfg.get("sweep")
    if not node:
        raise ConfigError("no sweep selected; pass sweep=NAME (a file of sweeps/, e.g. sweep=fashion_cnn)")
    metrics = list(node.metric) if OmegaConf.is_list(node.metric) else [node.metric]
    direction = node.direction
    if direction is None and metrics == [cfg.monitor.metric]:   # conf/sweep_defaults.yaml: null = monitor.mode's
        direction = {"max": "maximize", "min": "minimize"}.get(cfg.monitor.mode)
    directions = list(direction) if OmegaConf.is_list(direction) else [direction] * len(metrics)
    if len(directions) != len(metrics) or any(d not in DIRECTIONS for d in directions):
        raise ConfigError(f"sweep.direction={direction}: give maximize or minimize for each of "
                          f"sweep.metric={metrics}")
    for key, low in (("n_trials", 1), ("workers", 1), ("max_consecutive_failures", 1), ("devices_per_trial", 1)):
        value = node.get(key, 1 if key == "devices_per_trial" else None)
        if key == "workers" and value == AUTO:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            also = {"workers": ", or auto (one per devices_per_trial GPUs; on CPU one per 2 cores)",
                    "devices_per_trial": " (the GPUs each trial runs on)"}.get(key, "")
            raise ConfigError(f"sweep.{key}={value}: must be an integer of at least {low}{also}")
    objective = node.get("objective") or "best"
    if objective not in OBJECTIVES:
        raise ConfigError(f"sweep.objective={objective}: must be best (the best epoch's sweep.metric, "
                          "in sweep.direction) or last (the last epoch's)")
    if node.timeout is not None and (not isinstance(node.timeout, (int, float)) or node.timeout <= 0):
        raise ConfigError(f"sweep.timeout={node.timeout}: must be a number of seconds > 0, or null")
    resume = node.get("resume") or "auto"
    if resume not in RESUME:
        raise ConfigError(f"sweep.resume={resume}: use auto (continue a study only when this sweep made it: "
                          "same space, sampler, pruner, metric and overrides) or force (continue it anyway)")
    groups = {g for g in choices if not g.startswith("hydra")} - {"sweep"}
    space = parse_space(node.params or {}, groups=groups,
                        value_at=lambda key: OmegaConf.select(cfg, key, default=ABSENT,
                                                              throw_on_resolution_failure=False))
    if not space.distributions:
        raise ConfigError("sweep.params samples nothing; give at least one choice(), range() or interval()")
    settings = SweepSettings(
        study_name=node.study_name or choices.get("sweep"), metrics=metrics, directions=directions,
        n_trials=node.n_trials, workers=node.workers, timeout=node.timeout,
        max_consecutive_failures=node.max_consecutive_failures, storage=parse_storage(node.storage),
        space=space, sampler_cfg=node.sampler, pruner_cfg=node.pruner, register_as=node.get("register_as"),
        artifact_location=cfg.tracking.get("artifact_location"), devices_per_trial=node.get("devices_per_trial", 1),
        objective=objective,
        resume=resume, warm_start=parse_warm_start(node.get("warm_start")))
    sampler = settings.sampler()
    settings.pruner()
    if isinstance(sampler, GridSampler):
        # Past its last point a grid only repeats points (Optuna's optimize() stops there; a worker asks
        # trial by trial, so the sweep stops there by counting): n_trials is at most the grid's size.
        grid = settings.sampler_cfg.search_space or _grid(space)
        points = math.prod(len(values) for values in grid.values())
        if settings.n_trials > points:
            settings.asked_trials, settings.n_trials = settings.n_trials, points
    return settings



def _grid(space: SearchSpace) -> dict[str, list]:
    """Every value of each param, for GridSampler: choice() and range() params only."""
    grid = {}
    for key, dist in space.distributions.items():
        if isinstance(dist, CategoricalDistribution):
            grid[key] = list(dist.choices)
        elif dist.step is not None and not dist.log:
            count = int(round((dist.high - dist.low) / dist.step)) + 1
            grid[key] = [dist.low + i * dist.step for i in range(count)]
        else:
            raise ConfigError(f"sweep.params.{key}: the grid sampler needs choice() or range() values, "
                              "not an interval")
    return grid


def _instantiate(node: DictConfig | None, key: str, **kwargs):
    if not node or "_target_" not in node:
        raise ConfigError(f"{key} must name a class with _target_, e.g. optuna.samplers.TPESampler")
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as e:
        given = [k for k in node if k != "_target_"]
        if given and _importable(node._target_):   # the class is there; its arguments are not what it takes
            raise ConfigError(f"{key}: {cause_line(e)} (given: {', '.join(given)}); a pruner= or sampler= group "
                              f"choice brings its own arguments, so drop the {key}.* overrides that were meant "
                              "for another") from None
        raise ConfigError(f"{key}._target_={node._target_}: {cause_line(e)}; use a class of optuna.samplers "
                          "(TPESampler, RandomSampler, GridSampler, CmaEsSampler, QMCSampler, NSGAIISampler) "
                          "or optuna.pruners (MedianPruner, SuccessiveHalvingPruner, HyperbandPruner, NopPruner)") from None


def _importable(target: str) -> bool:
    """Whether `module.Class` imports (quietly: Hydra's get_class logs its failures to stderr)."""
    import importlib

    module, _, name = str(target).rpartition(".")
    try:
        return hasattr(importlib.import_module(module), name)
    except Exception:   # any import failure means: not importable
        return False
