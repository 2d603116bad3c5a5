"""Create or join a sweep from any process: its Optuna study and its one parent MLflow run.

`sweeplab sweep` and every `sweeplab worker`, on any machine, start here; whichever comes first
creates the study and the parent run, the others find them. The storage's study lock is held
across "open the study -> look up the parent run -> create it -> store its id on the study", so
that happens exactly once even when a SLURM array or a Kubernetes Job starts every task at once.
The last process to see the study complete records the summary on the parent run and closes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import optuna

from sweeplab.sweep import report, study as studies
from sweeplab.sweep.settings import SweepSettings
from sweeplab.sweep.storage import open_storage, study_lock
from sweeplab.tracking import store
from sweeplab.tracking.secrets import hide_passwords


@dataclass
class Joined:
    storage: object            # the Optuna storage, opened once per process
    study: optuna.Study
    client: object             # MlflowClient on the sweep's tracking URI
    parent_run_id: str


def join(settings: SweepSettings, overrides: list[str], uri: str) -> Joined:
    """The sweep's study and parent run, created by the first process to get here, found by the rest.

    A parent run of a study with trials left to run is (re)opened RUNNING.
    """
    client = store.open_client(uri)
    with study_lock(settings.storage, settings.study_name):
        # Inside the lock too: on an empty database Optuna creates its tables here, and two
        # processes creating them at once can collide.
        storage = open_storage(settings.storage, on_stale=studies.retry_trial)
        study = studies.create_or_load(settings, storage)
        parent_run_id = study.user_attrs.get(studies.PARENT_RUN_ATTR)
        if not parent_run_id:
            parent_run_id = _create_parent(client, settings, overrides)
            study.set_user_attr(studies.PARENT_RUN_ATTR, parent_run_id)
        elif studies.counts(study)["finished"] < settings.n_trials:
            if client.get_run(parent_run_id).info.status != "RUNNING":
                client.update_run(parent_run_id, status="RUNNING")
    return Joined(storage, study, client, parent_run_id)


def finish_if_complete(joined: Joined, settings: SweepSettings) -> bool:
    """When n_trials are finished and none is running: the summary on the parent run, which is closed
    FINISHED. Returns False (and writes nothing) when the study is not complete, or when another
    process already recorded these very counts."""
    client, study, parent_run_id = joined.client, joined.study, joined.parent_run_id
    with study_lock(settings.storage, settings.study_name):
        tidy(client, study, parent_run_id)
        found = studies.counts(study)
        if found["finished"] < settings.n_trials or found["RUNNING"]:
            return False
        parent = client.get_run(parent_run_id)
        recorded = parent.data.tags.get("sweeplab.trials")
        if parent.info.status == "FINISHED" and recorded and json.loads(recorded) == dict(found):
            return False
        report.record_on_parent(client, parent_run_id, study, settings)
        client.set_terminated(parent_run_id, "FINISHED")
        return True


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


def _create_parent(client, settings: SweepSettings, overrides: list[str]) -> str:
    """The parent run: the space, sampler and pruner; it holds the summary once the study is complete."""
    experiment_id = store.experiment_id(client, settings.mlflow_experiment, settings.artifact_location)
    sampler, pruner = settings.sampler_cfg._target_, settings.pruner_cfg._target_
    run = client.create_run(experiment_id, run_name=settings.study_name, tags={
        "sweeplab.role": "sweep", "optuna.study_name": settings.study_name, "optuna.sampler": sampler,
        "optuna.pruner": pruner, "optuna.storage": hide_passwords(settings.storage.url),
        "sweeplab.space": json.dumps(settings.space.describe()),
        "sweeplab.overrides": hide_passwords(json.dumps(overrides))})
    params = {"sweep.metric": ",".join(settings.metrics), "sweep.direction": ",".join(settings.directions),
              "sweep.sampler": sampler, "sweep.pruner": pruner,
              **{f"space.{k}": v for k, v in settings.space.describe().items()}}
    for key, value in params.items():
        client.log_param(run.info.run_id, key, hide_passwords(value)[:6000])
    return run.info.run_id
