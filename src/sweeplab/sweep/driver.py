"""`sweeplab sweep`: check everything, open the study and its parent MLflow run, start the workers,
show progress, and leave the summary on the parent run.

The driver imports no torch: it only watches the study while worker processes train.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from omegaconf import OmegaConf

from sweeplab.config import check_set, compose_config, compose_with_choices
from sweeplab.config import model_groups
from sweeplab.errors import ConfigError
from sweeplab.forks import client as forks
from sweeplab.secrets import hide_passwords
from sweeplab.sweep import placement, study as studies, warm_start
from sweeplab.sweep.finish import finish_sweep
from sweeplab.sweep.join import join, tidy as _tidy
from sweeplab.sweep.progress import Progress
from sweeplab.sweep.report import summary as report
from sweeplab.sweep.settings import SweepSettings, read_settings
from sweeplab.sweep.storage import check_storage
from sweeplab.sweep.worker_env import DEADLINE_ENV, EXIT_TOO_MANY_FAILURES, THREADS_ENV, WORKER_INDEX_ENV
from sweeplab.tracking import links, store, ui_view


def prepare(overrides: list[str], config_dirs: list[str]) -> tuple[SweepSettings, str]:
    """Everything that can be wrong with the input, found before anything is written."""
    cfg, choices = compose_with_choices(overrides, config_dirs)
    settings = read_settings(cfg, choices)
    check_set(cfg, filled_later=settings.space.distributions)   # else every trial fails on it
    _check_optimizer_params(cfg, settings)
    for key, dist in settings.space.distributions.items():
        if key in choices:  # a group choice: every option must exist
            for option in dist.choices:
                try:
                    compose_config([*overrides, f"{key}={option}"], config_dirs)
                except ConfigError as e:
                    raise ConfigError(f"sweep.params.{key}: {e}") from None
    # The GPUs this machine's workers share out: none when the trials train on CPU.
    cpu = str(OmegaConf.select(cfg, "trainer.accelerator", default="auto")) == "cpu"
    settings.gpus = [] if cpu else placement.visible_gpus()[0]
    placement.check(settings.devices_per_trial, settings.gpus, OmegaConf.select(cfg, "trainer.devices"))
    uri = store.tracking_uri(cfg.tracking.uri)
    store.check_reachable(uri)
    check_storage(settings.storage)
    settings.warm_start = warm_start.resolve(settings, uri)   # None when the study exists: nothing to seed
    return settings, uri


def _check_optimizer_params(cfg, settings: SweepSettings) -> None:
    """A sweep over optimizer.* or scheduler.* of a model that builds its own optimizer would vary nothing."""
    swept = [key for key in settings.space.distributions if key.split(".")[0] in model_groups.OPTIMIZER_GROUPS]
    if not swept:
        return
    unused = model_groups.unused_optimizer_groups(cfg.model)   # imports the model's module (only when such a key is swept)
    for key in swept:
        group = key.split(".")[0]
        if group in unused:
            raise ConfigError(f"sweep.params.{key}: {cfg.model._target_} builds its own optimizer and schedule "
                              f"(configure_optimizers), so the {group} group does not apply; sweep the "
                              "model's own parameters instead (e.g. model.lr)")


# What a worker imports (torch, Lightning, MLflow, Optuna: ≈5-6 s), once for all the driver's workers and
# their follower ranks (a worker's multi-device runs fork their ranks from the same server).
WORKER_MODULES = ("sweeplab.cli", "sweeplab.experiment", "sweeplab.sweep.worker.loop")
WORKER_ENTRY = "sweeplab.cli:main"


def run_sweep(overrides: list[str], config_dirs: list[str]) -> int:
    settings, uri = prepare(overrides, config_dirs)
    # Workers share the machine's cores: OpenMP threads that spin while waiting take cores from the
    # others (a fine-tuning step measured 9.0 s spinning, 3.2 s passive, two processes on 2 cores).
    # OpenMP reads this as torch loads, i.e. in the server the workers are forked from, started now: its
    # imports run while the study and the parent run are made.
    forks.server(WORKER_MODULES, {"OMP_WAIT_POLICY": "PASSIVE", **os.environ}).start()
    # Created here, or joined when a `sweeplab worker` somewhere got here first.
    joined = join(settings, overrides, uri)
    study, client, parent_run_id = joined.study, joined.client, joined.parent_run_id
    _tidy(client, study, parent_run_id)
    resumed = studies.resuming(study)
    if resumed:
        print(resumed, flush=True)
    left = settings.n_trials - studies.counts(study)["finished"]
    plan = placement.make_plan(settings.workers, settings.devices_per_trial, settings.gpus or [],
                               os.cpu_count() or 1, limit=max(left, 1),
                               pci_order="CUDA_VISIBLE_DEVICES" not in os.environ)
    if settings.asked_trials:
        print(f"sweep.n_trials={settings.asked_trials}: the grid has {settings.n_trials} points, so "
              f"{settings.n_trials} trials", flush=True)
    print(f"sweep {settings.study_name}: {settings.n_trials} trials, {plan.workers} worker(s); "
          f"study in {hide_passwords(settings.storage.url)}; MLflow experiment {settings.mlflow_experiment}, "
          f"parent run {parent_run_id}", flush=True)
    status, code = "FINISHED", 0
    if left > 0:
        print(plan.describe(), flush=True)
        code = _run_workers(study, settings, overrides, config_dirs, plan, client, parent_run_id)
        if code == 130:  # the summary counts what the storage holds, not what an interrupted read saw
            study = studies.reload(settings)
        if code == 0 and not studies.counts(study)["finished"]:
            # Every trial failed, or none started before the timeout: not a success, whatever stopped it.
            print(f"sweeplab: no trial of study {settings.study_name} finished; the workers' logs are in "
                  f"{Path('mlruns') / 'sweep-logs' / settings.study_name}", file=sys.stderr)
            code = 1
        status = {0: "FINISHED", 130: "KILLED"}.get(code, "FAILED")
    _tidy(client, study, parent_run_id)
    print(report.summary(study, settings), flush=True)
    finish_sweep(replace(joined, study=study), settings, status)
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    print(f"parent run {parent_run_id}, the trials nested under it")
    # Recorded again: a study made before views were recorded gets its view too.
    key = ui_view.record_sweep_view(client, experiment_id, settings.study_name, settings.metrics[0],
                                    settings.directions[0] == "maximize")
    print(links.sweep_hint(uri, experiment_id, key))
    return code


def _run_workers(study, settings: SweepSettings, overrides, config_dirs, plan: placement.Plan, client,
                 parent_run_id: str) -> int:
    logs = Path("mlruns") / "sweep-logs" / settings.study_name
    logs.mkdir(parents=True, exist_ok=True)
    deadline = time.time() + settings.timeout if settings.timeout else None
    count = plan.workers

    def start(index: int) -> forks.Forked:
        env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ, THREADS_ENV: str(plan.threads),
               WORKER_INDEX_ENV: str(index), **plan.env(index)}
        if deadline:
            env[DEADLINE_ENV] = str(deadline)
        args = ["worker", *[a for d in config_dirs for a in ("--config-dir", d)], *overrides]
        log = logs / f"worker-{index}.log"
        return forks.server(WORKER_MODULES).fork(WORKER_ENTRY, args, env=env, argv=[sys.argv[0], *args],
                                                 out=log, err=log, name=f"sweeplab-w{index}")

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
                    _stop(list(workers.values()))
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
                    elif left > 0:
                        code = 1
                        print(f"\nsweeplab: worker {index} died (exit {returned}) after {restarts} restarts; "
                              f"not restarting it; see {logs / f'worker-{index}.log'}", file=sys.stderr)
        # Trials still running in `sweeplab worker`s elsewhere: wait for them, so the summary has them
        # (a dead one's trial turns FAIL after the heartbeat grace period).
        while code == 0 and studies.counts(study)["RUNNING"]:
            time.sleep(1.0)
            _tidy(client, study, parent_run_id)
            progress.update(study)
        progress.update(study)
        progress.close()
    except KeyboardInterrupt:
        _stop(list(workers.values()))
        progress.close()
        print("sweeplab: interrupted; rerun the same command to resume (an interrupted trial runs again "
              "with the same params)", file=sys.stderr)
        return 130
    return code


def _stop(processes: list[forks.Forked]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    for process in processes:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
