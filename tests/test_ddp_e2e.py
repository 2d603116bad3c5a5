"""DDP on CPU (trainer=ddp_cpu: 2 processes, gloo) through the installed `sweeplab`: one MLflow run
and one Optuna trial per run whatever the number of ranks, exact metrics, stops and failures that
reach every rank, and no process left behind."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections import Counter
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from mlflow import MlflowClient
from omegaconf import OmegaConf

from conftest import SWEEPLAB, run_cli, store_uri
from test_sweep_e2e import mlflow_runs, states, study_of

FIXTURE = Path(__file__).parent / "ddp_fixture"
# 361 validation images: an odd count, so a sampler that pads the two shards would count one twice.
DDP = ["trainer=ddp_cpu", "trainer.enable_progress_bar=false", "data.val_fraction=0.2005",
       "tracking.system_metrics_interval=null"]
TIMEOUT = 240


def rank_processes(cwd: Path) -> tuple[list[int], list[int]]:
    """(fork servers, follower ranks) running in `cwd` (a test's own folder: other tests may run beside it).
    A follower is forked by a fork server (sweeplab.forks) and names itself sweeplab-rank<r>."""
    servers, followers = [], []
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or (entry / "cwd").resolve() != cwd.resolve():
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if state == "Z":
                continue
            if (entry / "comm").read_text().startswith("sweeplab-rank"):
                followers.append(int(entry.name))
            elif b"sweeplab.forks.server" in (entry / "cmdline").read_bytes() and \
                    not (entry / "comm").read_text().startswith("sweeplab"):   # forked children name themselves
                servers.append(int(entry.name))
        except OSError:
            pass    # it ended while we looked
    return servers, followers


def followers_left(cwd: Path) -> list[int]:
    return rank_processes(cwd)[1]


def nothing_left(cwd: Path) -> bool:
    """No follower and no fork server outlives the command that started them (a server leaves when
    its process's pipe closes: allow it a moment)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(rank_processes(cwd)):
        time.sleep(0.1)
    return not any(rank_processes(cwd))


def digest_of_logged_config(client: MlflowClient, run_id: str) -> str:
    text = Path(client.download_artifacts(run_id, "config.yaml")).read_text()
    container = OmegaConf.to_container(OmegaConf.create(text), resolve=True)
    return hashlib.sha256(json.dumps(container, sort_keys=True).encode()).hexdigest()[:16]


def assert_one_config_on_both_ranks(client: MlflowClient, run) -> None:
    assert run.data.tags["sweeplab.world_size"] == "2"
    digests = run.data.tags["sweeplab.rank_configs"].split(",")
    assert digests == [digest_of_logged_config(client, run.info.run_id)] * 2


def _train(tmp_path_factory, name: str, *extra: str):
    cwd = tmp_path_factory.mktemp(name)
    done = run_cli("train", "experiment=digits_cnn", *DDP, "trainer.max_epochs=1", *extra, cwd=cwd, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    return cwd, done


@pytest.fixture(scope="module")
def ddp_train(tmp_path_factory):
    # A callback from config that needs a logger on every rank (rank 1 has one that writes nothing).
    return _train(tmp_path_factory, "ddp_train", "callbacks=lr_monitor")


@pytest.fixture(scope="module")
def ddp_train_on_device(tmp_path_factory):
    """ddp_train with data.on_device=true: each rank slices its own shard of the tensors on its device."""
    return _train(tmp_path_factory, "ddp_train_on_device", "data.on_device=true")


@pytest.mark.parametrize("trained", ["ddp_train", "ddp_train_on_device"])
def test_ddp_train_is_one_run_with_metrics_over_the_whole_validation_set(trained, request):
    cwd, done = request.getfixturevalue(trained)
    client = MlflowClient(store_uri(cwd))
    (run,) = client.search_runs([client.get_experiment_by_name("digits_cnn").experiment_id])
    assert run.info.status == "FINISHED" and done.stdout.count("MLflow run ") == 1
    assert_one_config_on_both_ranks(client, run)
    assert nothing_left(cwd)

    # The exported model (the only epoch's weights) on the full validation split, in this process.
    from sweeplab.data.digits import DigitsDataModule

    data = DigitsDataModule(val_fraction=0.2005)
    data.setup()
    x, y = data._splits["val"].tensors
    assert len(y) == 361
    mlflow.set_tracking_uri(store_uri(cwd))
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    logits = torch.tensor(model.predict(x.numpy()))
    loss = torch.nn.functional.cross_entropy(logits, y).item()
    accuracy = (logits.argmax(1) == y).float().mean().item()
    assert run.data.metrics["val/loss"] == pytest.approx(loss, rel=1e-5)
    assert run.data.metrics["val/acc"] == pytest.approx(accuracy, abs=1e-6)
    # Both ranks' samples are counted: 2 ranks x ceil(1076 / 2) training images in the epoch.
    assert run.data.metrics["train/samples_per_second"] * run.data.metrics["train/epoch_seconds"] > 1076 * 0.9


def test_config_callbacks_run_on_every_rank(ddp_train):
    cwd, _ = ddp_train
    client = MlflowClient(store_uri(cwd))
    (run,) = client.search_runs([client.get_experiment_by_name("digits_cnn").experiment_id])
    assert run.data.params["callbacks.lr_monitor._target_"] == "pytorch_lightning.callbacks.LearningRateMonitor"
    assert run.data.metrics["lr-Adam"] == 0.001


def test_ddp_run_reproduces_from_its_run_id(ddp_train):
    cwd, _ = ddp_train
    client = MlflowClient(store_uri(cwd))
    (run,) = client.search_runs([client.get_experiment_by_name("digits_cnn").experiment_id])
    done = run_cli("reproduce", run.info.run_id, "--check", cwd=cwd, timeout=TIMEOUT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    runs = client.search_runs([client.get_experiment_by_name("digits_cnn").experiment_id])
    (again,) = [r for r in runs if r.data.tags.get("sweeplab.reproduces") == run.info.run_id]
    assert again.data.tags["sweeplab.world_size"] == "2"
    assert again.data.metrics["val/loss"] == run.data.metrics["val/loss"]
    assert nothing_left(cwd)


def test_ddp_sweep_prunes_both_ranks_one_run_per_trial(tmp_path):
    # Every trial is pruned after its first epoch (val/acc < 2.0): both ranks must stop there.
    done = run_cli("sweep", "sweep=digits_cnn", *DDP, "trainer.max_epochs=3", "sweep.n_trials=2",
                   "pruner=threshold", "sweep.pruner.lower=2.0", cwd=tmp_path, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    study = study_of(tmp_path)
    assert states(study) == Counter({"PRUNED": 2})
    client, (parent,), children = mlflow_runs(tmp_path)
    assert sorted(r.data.tags["optuna.trial_number"] for r in children) == ["0", "1"]
    for run in children:
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["optuna.state"] == "PRUNED" and run.info.status == "FINISHED"
        assert len(client.get_metric_history(run.info.run_id, "val/acc")) == 1
        assert_one_config_on_both_ranks(client, run)
    assert nothing_left(tmp_path)


def test_ddp_nan_trial_fails_on_every_rank_without_hanging(tmp_path):
    done = run_cli("sweep", "sweep=digits_cnn", *DDP, "trainer.max_epochs=2", "trainer.limit_train_batches=4",
                   "optimizer=sgd", "sweep.params.optimizer.lr=choice(1e30)", "sweep.n_trials=1",
                   "sweep.max_consecutive_failures=1", cwd=tmp_path, timeout=TIMEOUT)
    assert done.returncode == 1, done.stderr[-3000:]
    assert states(study_of(tmp_path)) == Counter({"FAIL": 1})
    _, _, (run,) = mlflow_runs(tmp_path)
    assert run.info.status == "FAILED" and "non-finite" in run.data.tags["sweeplab.error"]
    assert nothing_left(tmp_path)


@pytest.mark.parametrize("fail_rank", [1, 0])
def test_a_failure_in_one_rank_fails_the_trial_ends_its_ranks_and_the_worker_goes_on(tmp_path, fail_rank):
    command = [SWEEPLAB, "sweep", "--config-dir", str(FIXTURE / "conf"), "sweep=digits_cnn", *DDP,
               "model=fails_on_rank", f"model.fail_rank={fail_rank}", "trainer.max_epochs=2", "sweep.n_trials=2",
               "sweep.max_consecutive_failures=2"]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}, "PYTHONPATH": str(FIXTURE)}
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    # While the sweep runs, never more than one follower at a time: a failed trial's rank must be
    # gone before the next trial starts its own (a rank-0 failure leaves rank 1 blocked in a collective).
    most = 0
    try:
        while process.poll() is None:
            most = max(most, len(followers_left(tmp_path)))
            time.sleep(0.2)
        out, err = process.communicate(timeout=TIMEOUT)
    finally:
        process.kill()
    assert process.returncode == 1 and "the last 2 trials failed in a row" in err, err[-3000:]
    assert most == 1
    # The worker ran the second trial after the first failed: one worker process, two trials.
    study = study_of(tmp_path)
    assert states(study) == Counter({"FAIL": 2})
    assert len({t.user_attrs["sweeplab.worker"] for t in study.trials}) == 1
    # Rank 0 sees only a broken connection when rank 1 dies: the error names rank 1's own failure.
    expected = "RuntimeError: boom on rank 0" if fail_rank == 0 else "RankFailed: rank 1: RuntimeError: boom on rank 1"
    for trial in study.trials:
        assert trial.user_attrs["sweeplab.error"].startswith(expected)
    _, _, children = mlflow_runs(tmp_path)
    assert len(children) == 2
    for run in children:
        assert run.info.status == "FAILED" and run.data.tags["sweeplab.error"].startswith(expected)
    assert nothing_left(tmp_path)


def test_spawned_ranks_are_refused_before_any_run(tmp_path):
    done = run_cli("train", "experiment=digits_cnn", "trainer=ddp_cpu", "trainer.strategy=ddp_spawn",
                   cwd=tmp_path, timeout=TIMEOUT)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "trainer.strategy" in lines[0], done.stderr
    assert not (tmp_path / "mlruns").exists()

