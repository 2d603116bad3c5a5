"""Create or join a sweep from any process: its Optuna study and its one parent MLflow run.

`sweeplab sweep` and every `sweeplab worker`, on any machine, start here; whichever comes first
creates the study and the parent run, the others find them. The storage's study lock is held
across "open the study -> look up the parent run -> create it -> store its id on the study", so
that happens exactly once even when a SLURM array or a Kubernetes Job starts every task at once.
Under the same lock the study's definition is recorded by its maker and checked by everyone else, so
that no process runs a trial of a sweep other than the one that made the study.
Whoever finishes the study closes the parent run: finish.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import optuna

from sweeplab.secrets import hide_passwords
from sweeplab.sweep import definition, study as studies, warm_start
from sweeplab.sweep.settings import SweepSettings
from sweeplab.sweep.storage import open_storage, study_lock
from sweeplab.tracking import store, ui_view


@dataclass
class Joined:
    storage: object            # the Optuna storage, opened once per process
    study: optuna.Study
    client: object             # MlflowClient on the sweep's tracking URI
    parent_run_id: str


def join(settings: SweepSettings, overrides: list[str], uri: str) -> Joined:
    """The sweep's study and parent run, created by the first process to get here, found by the rest.

    A parent run of a study with trials left to run is (re)opened RUNNING. The study's definition
    (definition.py) is recorded by the process that makes it; every later one checks it first and,
    unless `sweep.resume=force`, raises ConfigError when its sweep differs, having written nothing.
    Trials stopped by Ctrl-C that were not queued again are queued here (see retry_interrupted).
    """
    client = store.open_client(uri)
    wanted = json.loads(definition.to_json(definition.of(settings, overrides)))
    with study_lock(settings.storage, settings.study_name):
        # Inside the lock too: on an empty database Optuna creates its tables here, and two
        # processes creating them at once can collide.
        storage = open_storage(settings.storage, on_stale=studies.retry_trial)
        study = studies.create_or_load(settings, storage)
        changes = _check_definition(study, settings, wanted)
        parent_run_id = study.user_attrs.get(studies.PARENT_RUN_ATTR)
        if not parent_run_id:
            parent_run_id = _create_parent(client, settings, overrides, wanted)
            if settings.warm_start and not study.trials:   # a new study: seeded once, by the process making it
                warm_start.seed(study, settings, storage, client, parent_run_id)
            study.set_user_attr(studies.PARENT_RUN_ATTR, parent_run_id)
        elif studies.counts(study)["finished"] < settings.n_trials:
            if client.get_run(parent_run_id).info.status != "RUNNING":
                client.update_run(parent_run_id, status="RUNNING")
        if changes is not None:
            study.set_user_attr(definition.ATTR, definition.to_json(wanted))
            if changes:
                _record_forced(client, parent_run_id, settings, overrides, wanted, changes, len(study.trials))
        studies.retry_interrupted(study)
    return Joined(storage, study, client, parent_run_id)


def _check_definition(study: optuna.Study, settings: SweepSettings, wanted: dict) -> list[str] | None:
    """None: the study was made by this very sweep. []: it has no definition yet (new, or made before
    definitions were recorded): this one is recorded. A list of differences: `sweep.resume=force` asked to
    continue it anyway. Raises ConfigError, before anything is written, in every other case."""
    recorded = study.user_attrs.get(definition.ATTR)
    changes = definition.differences(json.loads(recorded), wanted) if recorded else []
    if recorded and not changes:
        return None
    if changes and settings.resume != "force":
        raise definition.mismatch(settings.study_name, changes)
    definition.check_compatible(study, settings)
    return changes


def _record_forced(client, run_id: str, settings: SweepSettings, overrides: list[str], wanted: dict,
                   changes: list[str], first_trial: int) -> None:
    """A forced change of definition, on the parent run: its definition tags now hold the new one
    (MLflow params cannot change: `space.*`, `sweep.sampler`, ... keep the first), and `sweeplab.forced`
    lists each change with the first trial made under it."""
    history = json.loads(client.get_run(run_id).data.tags.get(definition.FORCED_TAG) or "[]")
    history.append({"from_trial": first_trial, "changes": [c[:500] for c in changes]})
    while len(history) > 1 and len(json.dumps(history)) > 7000:
        history.pop(0)
    for key, value in {**_definition_tags(settings, overrides, wanted),
                       definition.FORCED_TAG: hide_passwords(json.dumps(history))[:8000]}.items():
        client.set_tag(run_id, key, value)
    print(f"sweeplab: sweep.resume=force: study {settings.study_name} continues from trial {first_trial} "
          f"with {'; '.join(changes)[:1000]} (recorded on parent run {run_id}, tag {definition.FORCED_TAG})",
          flush=True)


def _definition_tags(settings: SweepSettings, overrides: list[str], wanted: dict) -> dict[str, str]:
    return {"optuna.sampler": settings.sampler_cfg._target_, "optuna.pruner": settings.pruner_cfg._target_,
            "sweeplab.space": json.dumps(settings.space.describe()),
            "sweeplab.overrides": hide_passwords(json.dumps(overrides)),
            definition.ATTR: definition.to_json(wanted)[:8000]}


def tidy(client, study: optuna.Study, parent_run_id: str) -> None:
    """Trials of dead workers become FAIL (and are retried); their MLflow runs are closed KILLED."""
    studies.recover_dead_trials(study)
    parent = client.get_run(parent_run_id)
    states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
    for run in client.search_runs([parent.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent_run_id}' and attributes.status = 'RUNNING'"):
        number = run.data.tags.get("optuna.trial_number", "")
        state = states.get(int(number)) if number.isdigit() else None
        if state is not None and state.name != "RUNNING":
            client.set_tag(run.info.run_id, "optuna.state", state.name)
            client.set_tag(run.info.run_id, "sweeplab.error", "its worker died")
            client.set_terminated(run.info.run_id, "KILLED")


def _create_parent(client, settings: SweepSettings, overrides: list[str], wanted: dict) -> str:
    """The parent run: the space, sampler, pruner and the whole definition; it holds the summary once
    the study is complete."""
    experiment_id = store.experiment_id(client, settings.mlflow_experiment, settings.artifact_location)
    sampler, pruner = settings.sampler_cfg._target_, settings.pruner_cfg._target_
    run = client.create_run(experiment_id, run_name=settings.study_name, tags={
        "sweeplab.role": "sweep", "optuna.study_name": settings.study_name,
        "optuna.storage": hide_passwords(settings.storage.url), **_definition_tags(settings, overrides, wanted)})
    params = {"sweep.metric": ",".join(settings.metrics), "sweep.direction": ",".join(settings.directions),
              "sweep.objective": settings.objective, "sweep.sampler": sampler, "sweep.pruner": pruner,
              **{f"space.{k}": v for k, v in settings.space.describe().items()}}
    for key, value in params.items():
        client.log_param(run.info.run_id, key, hide_passwords(value)[:6000])
    ui_view.record_sweep_view(client, experiment_id, settings.study_name, settings.metrics[0],
                              settings.directions[0] == "maximize")
    return run.info.run_id
