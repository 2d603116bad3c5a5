"""Warm start: a new study begins with an earlier study's complete trials that fit its space (seeded trials).

The earlier trials are copied as finished trials with `study.add_trials(optuna.trial.create_trial(...))`,
not queued with `enqueue_trial`: a queued trial is trained again, while a copied one costs nothing and the
sampler (TPE's startup count and its density model) and curve-reading pruners (median, percentile:
the copy keeps its per-epoch values) learn from it before the first new trial is asked for. Each copy
carries the new space's distributions, so Optuna treats it exactly as a trial of this search space, and
the attrs of seeded.py, so sweeplab does not count, rank or report it as one of the sweep's own trials.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace

import optuna
from optuna.distributions import BaseDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from sweeplab.errors import ConfigError
from sweeplab.secrets import hide_passwords
from sweeplab.sweep import definition, seeded
from sweeplab.sweep.settings import SweepSettings
from sweeplab.sweep.storage import StorageSpec, open_storage
from sweeplab.sweep.study import PARENT_RUN_ATTR
from sweeplab.sweep.warm_start_value import KEY, WarmStart
from sweeplab.sweep.worker_env import WORKER_INDEX_ENV

TAG = "sweeplab.warm_start"   # on the new sweep's parent run: the source, what was seeded and what was skipped


@dataclass
class Selection:
    complete: int                       # complete trials in the source study
    chosen: list[FrozenTrial]           # the ones to seed: the best top_k of those that fit, best first
    skipped: dict[int, str]             # source trial number -> why it does not fit the new space


def resolve(settings: SweepSettings, uri: str) -> WarmStart | None:
    """The warm start of `settings` checked against its storage (and MLflow, for a run id), before anything
    is written: the source study named, existing, optimising the same metric, with a trial that fits.
    None when there is nothing to do: no warm start asked for, or the sweep's study exists already (a warm
    start seeds a new study only; a resumed one keeps what it has)."""
    spec = settings.warm_start
    if spec is None:
        return None
    storage = _existing_storage(settings.storage)
    names = set(optuna.get_all_study_names(storage)) if storage else set()
    if settings.study_name in names:
        # Said once, by the command the user typed: a driver's own workers find the study it just made.
        if os.environ.get(WORKER_INDEX_ENV) is None:
            print(f"sweeplab: {KEY} ignored: study {settings.study_name} exists already (a warm start seeds "
                  "a new study only)", flush=True)
        return None
    name, parent_run_id = (_study_of_run(spec, settings, uri) if spec.is_run_id else (spec.source, None))
    where = hide_passwords(settings.storage.url)
    if name == settings.study_name:
        raise ConfigError(f"{KEY}={spec.describe()}: that is this sweep's own study; name an earlier one")
    if name not in names:
        shown = ", ".join(sorted(names)[:10]) or "none"
        raise ConfigError(f"{KEY}={spec.describe()}: no study '{name}' in {where} (studies there: {shown}); "
                          "a warm start reads the sweep's own sweep.storage")
    source = optuna.load_study(study_name=name, storage=storage)
    _check_same_objective(source, spec, settings)
    found = select(source, settings.space.distributions, spec.top_k)
    if not found.chosen:
        why = f"; e.g. trial {next(iter(found.skipped))}: {next(iter(found.skipped.values()))}" if found.skipped else ""
        raise ConfigError(f"{KEY}={spec.describe()}: none of the {found.complete} complete trials of study "
                          f"'{name}' fits this sweep's space{why}")
    return replace(spec, study_name=name,
                   parent_run_id=parent_run_id or source.user_attrs.get(PARENT_RUN_ATTR))


def select(source: optuna.Study, space: dict[str, BaseDistribution], top_k: int | None) -> Selection:
    """The source's complete trials, best first (the earliest on a tie), split into those that fit `space`
    (the same param names, each value inside the new distribution) and those that do not."""
    sign = -1.0 if source.directions[0] == StudyDirection.MAXIMIZE else 1.0
    complete = sorted(source.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)),
                      key=lambda t: (sign * t.values[0], t.number))
    fitting, skipped = [], {}
    for trial in complete:
        reason = misfit(trial.params, space)
        if reason:
            skipped[trial.number] = reason
        else:
            fitting.append(trial)
    return Selection(len(complete), fitting[:top_k] if top_k else fitting, skipped)


def misfit(params: dict, space: dict[str, BaseDistribution]) -> str | None:
    """Why `params` cannot be a trial of `space`, or None when they can: the check that
    `optuna.trial.create_trial` makes (`_contains(to_internal_repr(value))`), one reason a user can read."""
    missing, extra = sorted(set(space) - set(params)), sorted(set(params) - set(space))
    if missing or extra:
        return "; ".join(filter(None, [missing and f"no value for {', '.join(missing)}",
                                       extra and f"{', '.join(extra)} not in this space"]))
    for key, distribution in space.items():
        value = params[key]
        try:
            inside = distribution._contains(distribution.to_internal_repr(value))
        except (ValueError, TypeError):   # a categorical's to_internal_repr refuses a value not among its choices
            inside = False
        if not inside:
            shown = f"{value:.4g}" if isinstance(value, float) else repr(value)
            return f"{key}={shown} is outside {_short(distribution)}"
    return None


def seed(study: optuna.Study, settings: SweepSettings, storage, client, parent_run_id: str) -> None:
    """Copy the chosen trials into the new `study`, record the warm start on its parent run, and say so.
    Called once, by the process that creates the study, under the study lock, with `settings.warm_start`
    as resolve() returned it (the source study named)."""
    spec: WarmStart = settings.warm_start
    source = optuna.load_study(study_name=spec.study_name, storage=storage)
    found = select(source, settings.space.distributions, spec.top_k)
    runs = _runs_of(client, spec.parent_run_id)
    # In the source's trial order, so that the seeded trials (numbers 0, 1, ... here) keep it.
    chosen = sorted(found.chosen, key=lambda t: t.number)
    # A study made before steps were epochs completed reported the epoch index: one step later here.
    shift = 0 if definition.steps_of(definition.recorded_on(source)) == definition.STEPS else 1
    study.add_trials([optuna.trial.create_trial(
        values=trial.values, params=trial.params, distributions=settings.space.distributions,
        intermediate_values={step + shift: value for step, value in trial.intermediate_values.items()},
        user_attrs={seeded.FROM_STUDY_ATTR: spec.study_name, seeded.FROM_TRIAL_ATTR: trial.number,
                    **({seeded.FROM_RUN_ATTR: runs[trial.number]} if trial.number in runs else {})})
        for trial in chosen])
    numbers = {t.user_attrs[seeded.FROM_TRIAL_ATTR]: t.number for t in seeded.seeded_trials(study)}
    params = {"warm_start.source": spec.study_name, "warm_start.top_k": spec.top_k or "all",
              "warm_start.seeded": len(chosen), "warm_start.skipped": len(found.skipped),
              **({"warm_start.source_run": spec.parent_run_id} if spec.parent_run_id else {})}
    for key, value in params.items():
        client.log_param(parent_run_id, key, str(value))
    record = {"source": spec.study_name, "source_run": spec.parent_run_id, "top_k": spec.top_k,
              "complete_in_source": found.complete,
              "seeded": {str(numbers[t.number]): t.number for t in chosen},   # trial here -> trial there
              "skipped": {str(n): why for n, why in found.skipped.items()}}
    client.set_tag(parent_run_id, TAG, json.dumps(record)[:8000])
    which = f"the best {spec.top_k} that fit" if spec.top_k else "all that fit"
    print(f"warm start: seeded {len(chosen)} trial(s) of study {spec.study_name} ({which}); skipped "
          f"{len(found.skipped)} that do not fit this sweep's space; the sweep's own trials start at "
          f"trial {len(chosen)}", flush=True)


def _existing_storage(spec: StorageSpec):
    """The Optuna storage, or None when it is a file not made yet (opening it would create it)."""
    local = spec.local_file
    if local is not None and not local.exists():
        return None
    return open_storage(spec)


def _study_of_run(spec: WarmStart, settings: SweepSettings, uri: str) -> tuple[str, str]:
    """A sweep's parent run id -> (its study's name, the run id), through the run's MLflow tags."""
    from sweeplab.tracking import lookup, store

    if store.run_exists(uri, spec.source) is False:   # answered from SQLite alone, before MLflow loads
        raise ConfigError(f"{KEY}={spec.describe()}: {store.no_such_run(spec.source, uri)}")
    try:
        run = lookup.get_run(store.open_client(uri), spec.source)
    except ConfigError as e:
        raise ConfigError(f"{KEY}={spec.describe()}: {e}") from None
    name = run.data.tags.get("optuna.study_name")
    if not lookup.is_sweep(run) or not name:
        raise ConfigError(f"{KEY}={spec.describe()}: run {spec.source} is not a sweep's parent run; give a "
                          "study name or the parent run id that `sweeplab sweep` printed")
    recorded, here = run.data.tags.get("optuna.storage"), hide_passwords(settings.storage.url)
    if recorded and recorded != here:
        raise ConfigError(f"{KEY}={spec.describe()}: its study '{name}' is in {recorded}, not in this sweep's "
                          f"storage {here}; pass sweep.storage={recorded}")
    return name, spec.source


def _check_same_objective(source: optuna.Study, spec: WarmStart, settings: SweepSettings) -> None:
    """Seeded values must mean what the new trials' values mean: the same metric(s), direction(s) and
    objective (best or last epoch), when the source recorded them."""
    recorded = definition.recorded_on(source)
    theirs = {"metric": recorded.get("metric"), "direction": [d.name.lower() for d in source.directions],
              "objective": recorded.get("objective")}
    ours = {"metric": list(settings.metrics), "direction": list(settings.directions), "objective": settings.objective}
    for piece in theirs:
        if theirs[piece] is not None and theirs[piece] != ours[piece]:
            shown = [",".join(v) if isinstance(v, list) else str(v) for v in (theirs[piece], ours[piece])]
            raise ConfigError(f"{KEY}={spec.describe()}: study '{source.study_name}' has {piece} {shown[0]}, "
                              f"this sweep {shown[1]}: its values cannot seed this sweep")


def _runs_of(client, parent_run_id: str | None) -> dict[int, str]:
    """Source trial number -> its MLflow run id, from the source sweep's child runs (one search)."""
    from mlflow.exceptions import MlflowException

    if not parent_run_id:
        return {}
    try:
        parent = client.get_run(parent_run_id)
    except MlflowException:   # the source sweep recorded its runs in another MLflow store
        return {}
    found = {}
    for run in client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_run_id}'",
                                  order_by=["attributes.start_time ASC"]):
        number = run.data.tags.get("optuna.trial_number", "")
        if number.isdigit():
            found[int(number)] = run.info.run_id   # the latest run of a number wins
    return found


def _short(distribution: BaseDistribution) -> str:
    """FloatDistribution(low=0.0, high=0.3, log=False, step=None) -> [0, 0.3]; choices as a list."""
    if isinstance(distribution, optuna.distributions.CategoricalDistribution):
        return f"the choices {list(distribution.choices)}"
    scale = " (log)" if distribution.log else ""
    step = f" step {distribution.step:g}" if distribution.step else ""
    return f"[{distribution.low:g}, {distribution.high:g}]{step}{scale}"
