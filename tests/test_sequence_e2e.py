"""The sequence experiments end to end: the installed `sweeplab train` on real data, a real SQLite store."""

from __future__ import annotations

import json
import math
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from conftest import run_cli, runs_in, store_uri
from sweeplab.data.tokenizer import PAD, UNK, Vocabulary, tokenize

# Overrides per experiment on top of trainer=smoke, to keep the tests quick: exporting an LSTM
# traces every time step (64 take ~15 s on a CPU), so the exported LSTMs read short sequences,
# and one LSTM export per input kind (token ids, real values) is enough; fewer MNIST-1D signals
# are generated. CO2 trains 3 epochs, whose lowest val/rmse is neither the last nor the highest.
SHORT_MNIST1D = "data.num_samples=1000"
EXPERIMENTS = {
    "text_lstm": ["data.max_len=16"],
    "text_transformer": [],
    "mnist1d_cnn": [SHORT_MNIST1D],
    "mnist1d_lstm": [SHORT_MNIST1D, "tracking.log_model=false"],
    "mnist1d_transformer": [SHORT_MNIST1D, "tracking.log_model=false"],
    "co2_lstm": ["data.window=26", "trainer.max_epochs=3"],
}
CLASSIFIER_METRICS = ("train/loss", "val/loss", "val/acc", "val/f1", "test/acc", "test/f1")
REGRESSOR_METRICS = ("train/loss", "val/loss", "val/mse", "val/rmse", "val/mae", "test/rmse", "test/mae")


# Bad input: a CSV file's content, extra overrides, and what the one line of error must say.
BAD_CSV = {
    "no_such_column": ("text,label\nfine,1\n", ["data.label_column=stars"], "has no column 'stars'"),
    "empty_file": ("", [], "the file is empty"),
}


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    """{job: (folder, finished CLI process)}: each experiment once with trainer=smoke, and each bad
    CSV once, every command in a folder (and store) of its own.

    Two at a time: most of each command is the CLI importing torch, Lightning and MLflow, which
    a second core halves.
    """
    commands = {name: ("train", f"experiment={name}", "trainer=smoke", *extra) for name, extra in EXPERIMENTS.items()}
    folders = {name: tmp_path_factory.mktemp(name) for name in [*EXPERIMENTS, *BAD_CSV]}
    for name, (content, extra, _) in BAD_CSV.items():
        (folders[name] / "data.csv").write_text(content)
        commands[name] = ("train", "experiment=text_lstm", "trainer=smoke", "data=text_csv", "data.path=data.csv",
                          "data.num_classes=2", *extra)

    def run(name: str):
        return run_cli(*commands[name], cwd=folders[name])

    with ThreadPoolExecutor(max_workers=2) as pool:
        return {name: (folders[name], done) for name, done in zip(commands, pool.map(run, commands))}


def _run(smoke_runs, name: str):
    """(folder, the experiment's one MLflow run), once its command succeeded."""
    cwd, done = smoke_runs[name]
    assert done.returncode == 0, f"{name}: {done.stderr[-3000:]}"
    (run,) = runs_in(cwd, name)
    return cwd, run


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_each_experiment_finishes_with_its_metrics(smoke_runs, name):
    cwd, run = _run(smoke_runs, name)
    assert run.info.status == "FINISHED"
    assert f"MLflow run {run.info.run_id} (FINISHED)" in smoke_runs[name][1].stdout
    client = MlflowClient(store_uri(cwd))
    for key in REGRESSOR_METRICS if name == "co2_lstm" else CLASSIFIER_METRICS:
        history = client.get_metric_history(run.info.run_id, key)
        assert history and all(math.isfinite(m.value) for m in history), key
    assert len(run.data.tags["sweeplab.data_fingerprint"]) == 16
    assert run.data.params["name"] == name


def _model(smoke_runs, name: str):
    import mlflow

    cwd, run = _run(smoke_runs, name)
    mlflow.set_tracking_uri(store_uri(cwd))
    return mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")


def _figures(smoke_runs, name: str) -> set[str]:
    cwd, run = _run(smoke_runs, name)
    return {a.path for a in MlflowClient(store_uri(cwd)).list_artifacts(run.info.run_id, "figures")}


def test_text_models_load_without_sweeplab_and_take_padded_ids(smoke_runs):
    for name, width in (("text_lstm", 16), ("text_transformer", 64)):
        ids = np.zeros((3, width), dtype=np.int64)
        ids[0, :5], ids[1, :1], ids[2, :] = [5, 9, 2, 7, 3], [4], 6   # a short text, one word, a full row
        logits = _model(smoke_runs, name).predict(ids)
        assert logits.shape == (3, 2) and np.isfinite(logits).all(), name


def test_text_model_carries_what_turns_text_into_its_ids(smoke_runs):
    import mlflow

    cwd, run = _run(smoke_runs, "text_lstm")
    mlflow.set_tracking_uri(store_uri(cwd))
    folder = Path(mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/model", dst_path=str(cwd / "got")))
    words = (folder / "extra_files" / "vocab.txt").read_text(encoding="utf-8").splitlines()
    how = json.loads((folder / "extra_files" / "text_input.json").read_text(encoding="utf-8"))
    assert words[how["pad_id"]] == PAD and words[how["unk_id"]] == UNK and len(words) > 2
    assert how["classes"] == ["rotten", "fresh"] and how["max_len"] == 16
    # The ids a user makes from the two files alone equal the data module's own encoding.
    text = "It\u2019s a GRIPPING, well-acted film... zzyzx!"
    cleaned = text.lower()
    for quote in how["quotes_read_as_apostrophe"]:
        cleaned = cleaned.replace(quote, "'")
    index = {word: i for i, word in enumerate(words)}
    ids = [index.get(token, how["unk_id"]) for token in re.findall(how["token_pattern"], cleaned)]
    row = np.full((1, how["max_len"]), how["pad_id"], dtype=np.int64)
    row[0, : len(ids)] = ids[: how["max_len"]]
    expected, _ = Vocabulary(words[2:]).encode([tokenize(text)], how["max_len"])
    assert (row == expected).all() and how["unk_id"] in ids and index["it's"] in ids
    assert mlflow.pyfunc.load_model(str(folder)).predict(row).shape == (1, len(how["classes"]))


def test_series_models_load_without_sweeplab(smoke_runs):
    signals = np.random.default_rng(0).normal(size=(5, 40, 1)).astype(np.float32)
    assert _model(smoke_runs, "mnist1d_cnn").predict(signals).shape == (5, 10)
    forecast = _model(smoke_runs, "co2_lstm").predict(np.zeros((4, 26, 1), dtype=np.float32))
    assert forecast.shape == (4, 13)


def test_regression_keeps_the_checkpoint_with_the_lowest_rmse(smoke_runs, tmp_path):
    import mlflow
    import pytorch_lightning as pl
    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cwd, run = _run(smoke_runs, "co2_lstm")
    history = {m.step: m.value for m in MlflowClient(store_uri(cwd)).get_metric_history(run.info.run_id, "val/rmse")}
    lowest = min(history, key=history.get)
    assert lowest not in (max(history), max(history, key=history.get)), \
        f"val/rmse by epoch {history}: the lowest must be neither the last nor the highest for this test to tell"
    mlflow.set_tracking_uri(store_uri(cwd))
    folder = Path(mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/", dst_path=str(tmp_path)))
    kept = torch.load(folder / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)
    assert kept["epoch"] == lowest
    (state,) = [v for k, v in kept["callbacks"].items() if k.startswith("ModelCheckpoint")]
    assert state["monitor"] == "val/rmse" and state["best_model_score"].item() == pytest.approx(history[lowest])
    # test/rmse was computed with the kept weights: the same test batches through them give it again.
    cfg = OmegaConf.load(folder / "config.yaml")
    module = instantiate(cfg.model)
    module.load_state_dict(kept["state_dict"])
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                         limit_test_batches=cfg.trainer.limit_test_batches)
    (tested,) = trainer.test(module, datamodule=instantiate(cfg.data), verbose=False)
    assert tested["test/rmse"] == pytest.approx(run.data.metrics["test/rmse"], rel=1e-6)


def test_co2_logs_the_seasonal_naive_reference_and_a_forecast_plot(smoke_runs):
    metrics = _run(smoke_runs, "co2_lstm")[1].data.metrics
    assert 0 < metrics["test/seasonal_naive_rmse"] and "test/rmse" in metrics
    assert _figures(smoke_runs, "co2_lstm") == {"figures/forecast.png"}


def test_transformers_log_attention_heatmaps(smoke_runs):
    for name in ("text_transformer", "mnist1d_transformer"):
        assert _figures(smoke_runs, name) == {"figures/attention.png"}, name


@pytest.mark.parametrize("name", BAD_CSV)
def test_bad_csv_exits_2_with_one_line_and_no_run(smoke_runs, name):
    cwd, done = smoke_runs[name]
    assert done.returncode == 2, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sweeplab: error:") and BAD_CSV[name][2] in lines[0], done.stderr
    assert not (cwd / "mlruns").exists()
