"""`sweeplab train` end to end: the installed command, a real SQLite MLflow store in a tmp dir."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import time
import textwrap
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

import sweeplab
from conftest import SWEEPLAB, free_port, run_cli, runs_in, store_uri

SMOKE = ["experiment=digits_cnn", "trainer=smoke"]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One smoke run shared by the tests that read its record."""
    cwd = tmp_path_factory.mktemp("train")
    done = run_cli("train", *SMOKE, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = runs_in(cwd, "digits_cnn")
    return cwd, run, done


def test_train_prints_metrics_and_run_id(smoke_run):
    cwd, run, done = smoke_run
    assert f"MLflow run {run.info.run_id} (FINISHED)" in done.stdout
    assert "val/acc" in done.stdout and "test/acc" in done.stdout
    assert run.info.status == "FINISHED"
    # mlruns/ is made in the current directory, artifacts under it.
    assert (cwd / "mlruns" / "mlflow.db").exists()
    assert run.info.artifact_uri.startswith((cwd / "mlruns" / "artifacts").as_uri())


def test_params_are_the_resolved_config(smoke_run):
    _, run, _ = smoke_run
    params = run.data.params
    assert len(params) >= 30
    assert params["optimizer.lr"] == "0.001"
    assert params["model.backbone.dropout"] == params["model.dropout"]  # interpolation resolved
    assert params["trainer.max_epochs"] == "2" and params["name"] == "digits_cnn"


def test_metric_history_has_one_point_per_epoch(smoke_run):
    cwd, run, _ = smoke_run
    client = MlflowClient(store_uri(cwd))
    for key in ("train/loss", "val/loss", "val/acc", "val/f1", "train/lr",
                "train/epoch_seconds", "train/samples_per_second"):
        history = client.get_metric_history(run.info.run_id, key)
        assert [m.step for m in history] == [0, 1], key
        assert all(math.isfinite(m.value) for m in history)
    for key in ("test/acc", "test/f1", "test/precision", "test/recall", "test/loss"):
        assert len(client.get_metric_history(run.info.run_id, key)) == 1, key


def test_tags_pin_down_what_ran(smoke_run):
    cwd, run, _ = smoke_run
    tags = run.data.tags
    assert tags["sweeplab.seed"] == "42"
    assert len(tags["sweeplab.data_fingerprint"]) == 16
    assert tags["sweeplab.command"].startswith("sweeplab train experiment=digits_cnn")
    for package in ("torch", "pytorch-lightning", "mlflow", "hydra-core", "optuna"):
        assert tags[f"sweeplab.version.{package}"]
    # The run's folder is no git checkout, so the run recorded the checkout of the code it ran.
    checkout = Path(sweeplab.__file__).parent

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True,
                              check=True).stdout.strip()

    assert tags["mlflow.source.git.commit"] == git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    assert tags["sweeplab.git.dirty"] == str(dirty).lower()
    names = {a.path for a in MlflowClient(store_uri(cwd)).list_artifacts(run.info.run_id)}
    assert ("git.patch" in names) == dirty


def test_artifacts_and_model(smoke_run):
    import mlflow

    cwd, run, _ = smoke_run
    client = MlflowClient(store_uri(cwd))
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "overrides.txt", "checkpoints"} <= names
    assert [a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")] == ["checkpoints/best.ckpt"]
    config = (cwd / "mlruns").rglob("config.yaml").__next__().read_text()
    assert "name: digits_cnn" in config and "${" not in config
    mlflow.set_tracking_uri(store_uri(cwd))
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    logits = model.predict(np.random.default_rng(0).normal(size=(7, 1, 8, 8)).astype(np.float32))
    assert logits.shape == (7, 10)
    assert model.metadata.signature.inputs.to_dict()[0]["tensor-spec"]["shape"] == (-1, 1, 8, 8)


def test_same_command_same_metrics(smoke_run, tmp_path):
    cwd, first, _ = smoke_run
    done = run_cli("train", *SMOKE, "tracking.log_model=false", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (second,) = runs_in(tmp_path, "digits_cnn")
    for key in ("val/acc", "val/loss", "val/f1", "test/acc"):
        assert second.data.metrics[key] == first.data.metrics[key], key
    assert second.data.tags["sweeplab.data_fingerprint"] == first.data.tags["sweeplab.data_fingerprint"]


@pytest.mark.parametrize("args, message", [
    (["experiment=nope"], "unknown config option"),
    (["trainer.max_epoch=3"], "unknown config key"),
    (["trainer.max_epochs=abc"], "expected an integer"),
    (["experiment=fashion_cnn", "data.root=/nonexistent/fashion"], "no such directory"),
    (["tracking.uri=http://127.0.0.1:{port}"], "is unreachable"),
    (["data.train_size=0"], "data.train_size=0"),
    (["experiment=text_lstm", "data=text_csv", "data.num_classes=2"],
     "data.path: not set (??? in the config); give it on the command line, e.g. data.path=VALUE"),
    (["experiment=text_lstm", "data=text_csv", "data.path=x.csv"],
     "data.num_classes: not set (??? in the config), and model.num_classes needs it"),
])
def test_bad_input_exits_2_with_one_line_and_no_run(tmp_path, args, message):
    args = [a.format(port=free_port()) for a in args]
    done = run_cli("train", *SMOKE, *args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sweeplab: error:") and message in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "mlruns").exists()


def test_print_config_exits_0_without_a_run(tmp_path):
    done = run_cli("train", "--print-config", *SMOKE, "optimizer=sgd", cwd=tmp_path)
    assert done.returncode == 0
    assert "_target_: torch.optim.SGD" in done.stdout and "momentum: 0.9" in done.stdout
    assert not (tmp_path / "mlruns").exists()


USER_MODEL = '''
"""A user's own backbone, outside sweeplab."""
import torch
from torch import nn


class TinyMLP(nn.Module):
    def __init__(self, in_features: int, hidden: int, explode: bool = False):
        super().__init__()
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU())
        self.out_features = hidden
        self.explode = explode

    def forward(self, x):
        if self.explode and self.training:
            raise RuntimeError("the user model exploded")
        return self.layers(x)
'''


def _user_config(tmp_path):
    conf = tmp_path / "my_conf"
    (conf / "model").mkdir(parents=True)
    (conf / "experiment").mkdir()
    (conf / "model" / "tiny_mlp.yaml").write_text(textwrap.dedent("""\
        _target_: sweeplab.models.classifier.Classifier
        num_classes: ${data.num_classes}
        dropout: 0.0
        label_smoothing: 0.0
        l1: 0.0
        backbone:
          _target_: user_models.TinyMLP
          in_features: 64
          hidden: 24
          explode: false
        """))
    (conf / "experiment" / "my_digits.yaml").write_text(textwrap.dedent("""\
        # @package _global_
        defaults:
          - override /data: digits
          - override /model: tiny_mlp
        name: my_digits
        """))
    (tmp_path / "user_models.py").write_text(USER_MODEL)
    return conf, {"PYTHONPATH": str(tmp_path)}


def test_user_config_dir_and_model(tmp_path):
    conf, env = _user_config(tmp_path)
    done = run_cli("train", "--config-dir", str(conf), "experiment=my_digits", "trainer=smoke",
                   "tracking.log_model=false", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = runs_in(tmp_path, "my_digits")
    assert run.info.status == "FINISHED"
    assert run.data.params["model.backbone._target_"] == "user_models.TinyMLP"
    assert run.data.params["model.backbone.hidden"] == "24"


def test_failure_in_training_marks_the_run_failed(tmp_path):
    conf, env = _user_config(tmp_path)
    done = run_cli("train", "--config-dir", str(conf), "experiment=my_digits", "trainer=smoke",
                   "model.backbone.explode=true", cwd=tmp_path, env=env)
    assert done.returncode == 1
    (run,) = runs_in(tmp_path, "my_digits")
    assert run.info.status == "FAILED"
    assert "the user model exploded" in run.data.tags["sweeplab.error"]
    names = {a.path for a in MlflowClient(store_uri(tmp_path)).list_artifacts(run.info.run_id)}
    assert "error.txt" in names


def _has_metric(db, key: str) -> bool:
    """Read-only peek at the store, so the test never races the run's own schema set-up."""
    if not db.exists():
        return False
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
            return connection.execute("select 1 from metrics where key = ?", (key,)).fetchone() is not None
    except sqlite3.OperationalError:
        return False


def test_ctrl_c_marks_the_run_killed(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    process = subprocess.Popen([SWEEPLAB, "train", "experiment=digits_cnn", "trainer=cpu",
                                "trainer.max_epochs=1000", "trainer.enable_progress_bar=false"],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _has_metric(tmp_path / "mlruns" / "mlflow.db", "val/acc"):
            time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr[-3000:]
    (run,) = runs_in(tmp_path, "digits_cnn")
    assert run.info.status == "KILLED"
