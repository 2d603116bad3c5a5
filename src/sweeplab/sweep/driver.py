"""`sweeplab sweep`: check everything, open the study and its parent MLflow run, start the workers,
show progress, and leave the summary on the parent run.

The driver imports no torch: it only watches the study while worker processes train.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from sweeplab.config import compose_config, compose_with_choices
from sweeplab.errors import ConfigError
from sweeplab.sweep import report, study as studies
from sweeplab.sweep.progress import Progress
from sweeplab.sweep.settings import SweepSettings, read_settings
from sweeplab.sweep.storage import check_storage, open_storage
from sweeplab.sweep.worker_env import DEADLINE_ENV, EXIT_TOO_MANY_FAILURES, THREADS_ENV, WORKER_INDEX_ENV
from sweeplab.tracking import store


def prepare(overrides: list[str], config_dirs: list[str]) -> tuple[SweepSettings, str]:
    """Everything that can be wrong with the input, found before anything is written."""
    cfg, choices = compose_with_choices(overrides, config_dirs)
    settings = read_settings(cfg, choices)
    for key, dist in settings.space.distributions.items():
        if key in choices:  # a group choice: every option must exist
            for option in dist.choices:
                try:
                    compose_config([*overrides, f"{key}={option}"], config_dirs)
                except ConfigError as e:
                    raise ConfigError(f"sweep.params.{key}: {e}") from None
    uri = store.tracking_uri(cfg.tracking.uri)
    store.check_reachable(uri)
    check_storage(settings.storage)
    return settings, uri


def run_sweep(overrides: list[str], config_dirs: list[str]) -> int:
    settings, uri = prepare(overrides, config_dirs)
    storage = open_storage(settings.storage, on_stale=studies.retry_trial)
    study = studies.create_or_load(settings, storage)
    client = store.open_client(uri)
    parent_run_id = _parent_run(client, study, settings, config_dirs, overrides)
    _tidy(client, study, parent_run_id)
    print(f"sweep {settings.study_name}: {settings.n_trials} trials, {settings.workers} worker(s); "
          f"study in {settings.storage.url}; MLflow experiment {settings.mlflow_experiment}, "
          f"parent run {parent_run_id}", flush=True)
    left = settings.n_trials - studies.counts(study)["finished"]
    status, code = "FINISHED", 0
    if left > 0:
        code = _run_workers(study, settings, overrides, config_dirs, min(settings.workers, left), client,
                            parent_run_id)
        status = {0: "FINISHED", 130: "KILLED"}.get(code, "FAILED")
    _tidy(client, study, parent_run_id)
    report.record_on_parent(client, parent_run_id, study, settings)
    client.set_terminated(parent_run_id, status)
    print(report.summary(study, settings))
    if settings.register_as and report.best_trials(study):
        from sweeplab.registry import ALIAS, register

        link = register(client, parent_run_id, settings.register_as)
        print(f"registered the best trial's model as {link} ({settings.register_as}@{ALIAS})")
    print(f"parent run {parent_run_id}; open the UI with: mlflow ui --backend-store-uri {uri}")
    return code


def _parent_run(client, study, settings: SweepSettings, config_dirs, overrides) -> str:
    """One parent run per study, created once and reused on every resume."""
    existing = study.user_attrs.get(studies.PARENT_RUN_ATTR)
    if existing:
        client.update_run(existing, status="RUNNING")
        return existing
    experiment_id = store.experiment_id(client, settings.mlflow_experiment, settings.artifact_location)
    sampler, pruner = settings.sampler_cfg._target_, settings.pruner_cfg._target_
    run = client.create_run(experiment_id, run_name=settings.study_name, tags={
        "sweeplab.role": "sweep", "optuna.study_name": settings.study_name, "optuna.sampler": sampler,
        "optuna.pruner": pruner, "optuna.storage": settings.storage.url,
        "sweeplab.space": json.dumps(settings.space.describe()), "sweeplab.overrides": json.dumps(overrides)})
    params = {"sweep.metric": ",".join(settings.metrics), "sweep.direction": ",".join(settings.directions),
              "sweep.sampler": sampler, "sweep.pruner": pruner,
              **{f"space.{k}": v for k, v in settings.space.describe().items()}}
    for key, value in params.items():
        client.log_param(run.info.run_id, key, value[:6000])
    study.set_user_attr(studies.PARENT_RUN_ATTR, run.info.run_id)
    return run.info.run_id


def _tidy(client, study, parent_run_id: str) -> None:
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


def _run_workers(study, settings: SweepSettings, overrides, config_dirs, count: int, client,
                 parent_run_id: str) -> int:
    logs = Path("mlruns") / "sweep-logs" / settings.study_name
    logs.mkdir(parents=True, exist_ok=True)
    deadline = time.time() + settings.timeout if settings.timeout else None
    gpus = _gpu_ids()
    threads = max(1, (os.cpu_count() or 1) // count)

    def start(index: int) -> subprocess.Popen:
        env = {**os.environ, THREADS_ENV: str(threads), WORKER_INDEX_ENV: str(index)}
        if deadline:
            env[DEADLINE_ENV] = str(deadline)
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
        command = [sys.executable, "-m", "sweeplab.cli", "worker",
                   *[a for d in config_dirs for a in ("--config-dir", d)], *overrides]
        log = open(logs / f"worker-{index}.log", "a")
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)

    workers = {i: start(i) for i in range(count)}
    restarts, code = 0, 0
    progress = Progress(settings)
    try:
        while workers:
            time.sleep(1.0)
            progress.update(study)
            for index, process in list(workers.items()):
                returned = process.poll()
                if returned is None:
                    continue
                del workers[index]
                if returned == EXIT_TOO_MANY_FAILURES:
                    code = 1
                    _stop(workers.values())
                    workers.clear()
                    progress.close()
                    print(f"sweeplab: stopped: the last {settings.max_consecutive_failures} trials failed "
                          f"in a row; see {logs / f'worker-{index}.log'}", file=sys.stderr)
                elif returned != 0:
                    _tidy(client, study, parent_run_id)
                    left = settings.n_trials - studies.counts(study)["finished"]
                    if left > 0 and restarts < 2 * count:
                        restarts += 1
                        print(f"\nsweeplab: worker {index} died (exit {returned}); its trial will be "
                              f"retried; restarting it", file=sys.stderr)
                        workers[index] = start(index)
        progress.update(study)
        progress.close()
    except KeyboardInterrupt:
        _stop(workers.values())
        progress.close()
        print("sweeplab: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return code


def _stop(processes) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    for process in processes:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def _gpu_ids() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g for g in visible.split(",") if g.strip()]
    if not shutil.which("nvidia-smi"):
        return []
    listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout
    return [str(i) for i, line in enumerate(listed.splitlines()) if line.startswith("GPU ")]
