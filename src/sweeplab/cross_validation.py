"""k-fold cross-validation's pieces: when a run is one, each fold's config, the fold-aware callback contract, cv/ stats.

run_experiment runs the folds (one nested MLflow run `fold-<k>` each, under the run the caller sees);
everything here is free of MLflow and Lightning.
"""

from __future__ import annotations

import abc
import math
import statistics

from omegaconf import DictConfig, OmegaConf, open_dict

from sweeplab.data import folds as fold_splits
from sweeplab.errors import ConfigError

# What a fold's summary keeps: validation metrics at its best epoch, test metrics (measured on that epoch's
# checkpoint). Training metrics and timings describe how a fold ran, not how good its model is.
SUMMARISED = ("val/", "test/")


def wanted(cfg: DictConfig) -> bool:
    """A run of every fold: data.folds is set and data.fold (one fold only) is not."""
    data = cfg.get("data") or {}
    return data.get("folds") is not None and data.get("fold") is None


def fold_configs(cfg: DictConfig) -> list[DictConfig]:
    """The config of each fold: the run's own with data.fold=k."""
    folds = cfg.data.folds
    try:   # the data modules' own check of the count (each checks its allowed strategies when built)
        fold_splits.check(folds, None, fold_splits.STRATEGIES[0])
    except ValueError as e:
        raise ConfigError(str(e)) from None
    configs = []
    for k in range(folds):
        fold_cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
        with open_dict(fold_cfg):
            fold_cfg.data.fold = k
        configs.append(fold_cfg)
    return configs


def epochs_per_fold(cfg: DictConfig) -> int:
    """The step offset between folds in what a sweep reports: fold k's n-th epoch is step k * this + n."""
    epochs = cfg.trainer.get("max_epochs")
    if not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"data.folds={cfg.data.folds} needs a fixed trainer.max_epochs (>= 1), "
                          f"not {epochs}: every fold's epochs must line up across trials")
    return epochs


class FoldAware(abc.ABC):
    """A callback handed to run_experiment that must know which fold is starting (a sweep's reporter)."""

    @abc.abstractmethod
    def start_fold(self, fold: int, first_step: int, last: bool) -> None:
        """Fold `fold` (the `last` one, or not) is about to train; its n-th epoch (n = 1, 2, ...) is step
        `first_step + n` of the whole run."""


def progress_line(fold: int, folds: int, metric: str, fold_stats: dict[str, float], seconds: float) -> str:
    """`fold 2/3: val/acc 0.9312 (1 min 22 s in; about 41 s left)` once fold `fold` (from 0) is done."""
    value = fold_stats.get(metric)
    shown = f"{metric} {value:.4g}" if value is not None else f"{metric} -"
    left = seconds / (fold + 1) * (folds - fold - 1)
    return (f"fold {fold + 1}/{folds}: {shown} ({_duration(seconds)} in"
            + (f"; about {_duration(left)} left)" if fold + 1 < folds else ")"))


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def summary(folds: list[dict[str, float]]) -> dict[str, float]:
    """`cv/<metric>_mean` and `cv/<metric>_std` (sample std; 0 for one fold) over the folds' summaries, for
    every metric all folds have."""
    shared = set.intersection(*(set(f) for f in folds)) if folds else set()
    stats: dict[str, float] = {}
    for key in sorted(shared):
        values = [f[key] for f in folds]
        stats[f"cv/{key}_mean"] = statistics.fmean(values) if all(map(math.isfinite, values)) else math.nan
        stats[f"cv/{key}_std"] = (statistics.stdev(values) if len(values) > 1 else 0.0) \
            if all(map(math.isfinite, values)) else math.nan
    return stats


def fold_summary(best_epoch: dict[str, float], final: dict[str, float]) -> dict[str, float]:
    """One fold's figures: val/* at its best epoch, test/* as tested."""
    kept = {k: v for k, v in best_epoch.items() if k.startswith("val/")}
    kept.update({k: v for k, v in final.items() if k.startswith("test/")})
    return kept


def means(stats: dict[str, float]) -> dict[str, float]:
    """The plain metric names with their fold means (what a sweep's objective and a comparison read)."""
    return {key[3:-5]: value for key, value in stats.items() if key.endswith("_mean")}
