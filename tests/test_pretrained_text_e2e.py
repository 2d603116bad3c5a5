"""model=hf_encoder end to end on a tiny random BERT checkpoint written by the test: train, export and predict on
raw strings (in a process without sweeplab, and through `mlflow models serve`), reproduce --check and its refusal of
other weights, explain, a sweep with pruning, bad checkpoints; and the real all-MiniLM-L6-v2 from its package."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mlflow import MlflowClient

from conftest import free_port, run_cli, runs_in, store_uri
from tiny_bert import write_tiny_bert

SENTENCES = ["a fine film", "dull, and far too long", "the best story of the year"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> SimpleNamespace:
    """The tiny checkpoint, and one run trained on it (exported model included)."""
    cwd = tmp_path_factory.mktemp("pretrained")
    checkpoint = write_tiny_bert(cwd / "tiny-bert")
    env = {"SWEEPLAB_CACHE": str(cwd / "cache")}
    args = ["data=rotten_tomatoes", "model=hf_encoder", f"model.checkpoint={checkpoint}", "trainer=smoke",
            "name=tiny_bert", "data.max_len=32", "tracking.system_metrics_interval=null"]
    done = run_cli("train", *args, cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = runs_in(cwd, "tiny_bert")
    return SimpleNamespace(cwd=cwd, checkpoint=checkpoint, env=env, args=args, run=run, stdout=done.stdout)


def test_the_run_records_its_checkpoint_and_tokenizes_with_it(tiny):
    import hashlib

    tags, params = tiny.run.data.tags, tiny.run.data.params
    weights = hashlib.sha256((tiny.checkpoint / "model.safetensors").read_bytes()).hexdigest()
    assert tags["sweeplab.checkpoint"] == str(tiny.checkpoint)
    assert tags["sweeplab.checkpoint.sha256"] == weights
    assert params["data.tokenizer"] == str(tiny.checkpoint) and params["model.checkpoint"] == str(tiny.checkpoint)
    assert 0 <= tiny.run.data.metrics["test/acc"] <= 1
    # The token cache: one file, keyed by the tokenizer's files, the texts and max_len.
    assert len(list((tiny.cwd / "cache" / "tokens").glob("*.npy"))) == 1


PREDICT = """
import json, sys
import mlflow
mlflow.set_tracking_uri(sys.argv[1])
model = mlflow.pyfunc.load_model(f"runs:/{sys.argv[2]}/model")
frame = model.predict(json.loads(sys.argv[3]))
print(json.dumps({"frame": frame.to_dict(orient="list"),
                  "sweeplab": sorted(m for m in sys.modules if m.split(".")[0] == "sweeplab")}))
"""


def test_the_exported_model_takes_raw_strings_without_sweeplab(tiny):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    done = subprocess.run([sys.executable, "-c", PREDICT, store_uri(tiny.cwd), tiny.run.info.run_id,
                           json.dumps(SENTENCES)], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "PYTHONPATH": ""}, cwd=tiny.cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["sweeplab"] == []
    frame = answer["frame"]
    assert list(frame) == ["label", "proba_rotten", "proba_fresh"]
    # The same probabilities as the trained module on the same texts, tokenized by the checkpoint's tokenizer.
    client = MlflowClient(store_uri(tiny.cwd))
    cfg = OmegaConf.load(client.download_artifacts(tiny.run.info.run_id, "config.yaml", str(tiny.cwd)))
    module = instantiate(cfg.model)
    saved = client.download_artifacts(tiny.run.info.run_id, "checkpoints/best.ckpt", str(tiny.cwd))
    module.load_state_dict(torch.load(saved, weights_only=False)["state_dict"])
    from transformers import AutoTokenizer

    ids = AutoTokenizer.from_pretrained(tiny.checkpoint)(SENTENCES, padding=True, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        expected = torch.softmax(module.eval()(ids), dim=1)
    assert torch.allclose(torch.tensor([frame["proba_rotten"], frame["proba_fresh"]]).T, expected, atol=1e-5)
    assert frame["label"] == [["rotten", "fresh"][i] for i in expected.argmax(1).tolist()]


def test_mlflow_models_serve_answers_raw_sentences(tiny):
    port = free_port()
    mlflow = Path(sys.executable).parent / "mlflow"
    server = subprocess.Popen([str(mlflow), "models", "serve", "-m", f"runs:/{tiny.run.info.run_id}/model",
                               "--env-manager", "local", "--host", "127.0.0.1", "-p", str(port)],
                              # The server runs `uvicorn` by name: the environment's bin folder is on PATH,
                              # as in an activated virtualenv.
                              env={**os.environ, "MLFLOW_TRACKING_URI": store_uri(tiny.cwd),
                                   "PATH": f"{mlflow.parent}{os.pathsep}{os.environ.get('PATH', '')}"}, cwd=tiny.cwd,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                assert server.poll() is None and time.time() < deadline, server.stdout.read().decode()[-3000:]
                time.sleep(0.5)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations",
                                         data=json.dumps({"inputs": SENTENCES}).encode(),
                                         headers={"Content-Type": "application/json"})
        answer = json.loads(urllib.request.urlopen(request, timeout=60).read())
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    rows = answer["predictions"]
    assert len(rows) == len(SENTENCES)
    assert all(row["label"] in ("rotten", "fresh") and abs(row["proba_rotten"] + row["proba_fresh"] - 1) < 1e-6
               for row in rows)


def test_reproduce_checks_the_run_and_refuses_other_weights(tiny, tmp_path):
    done = run_cli("reproduce", tiny.run.info.run_id, "--check", cwd=tiny.cwd, env=tiny.env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "largest difference 0 " in done.stdout
    # The same folder with other weights: one line, no new run.
    original = tiny.checkpoint / "model.safetensors"
    kept = tmp_path / "model.safetensors"
    shutil.copy(original, kept)
    write_tiny_bert(tmp_path / "other", seed=1)
    shutil.copy(tmp_path / "other" / "model.safetensors", original)
    try:
        runs_before = len(runs_in(tiny.cwd, "tiny_bert"))
        refused = run_cli("reproduce", tiny.run.info.run_id, "--check", cwd=tiny.cwd, env=tiny.env)
    finally:
        shutil.copy(kept, original)
    assert refused.returncode == 2, refused.stderr[-3000:]
    errors = [line for line in refused.stderr.splitlines() if line.startswith("sweeplab: error")]
    assert len(errors) == 1 and "are not those the run started from" in errors[0]
    assert tiny.run.data.tags["sweeplab.checkpoint.sha256"] in errors[0]
    assert len(runs_in(tiny.cwd, "tiny_bert")) == runs_before


def test_explain_attributes_word_pieces(tiny):
    done = run_cli("explain", tiny.run.info.run_id, cwd=tiny.cwd, env=tiny.env)
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(store_uri(tiny.cwd))
    page = Path(client.download_artifacts(tiny.run.info.run_id, "explanations/words.html", str(tiny.cwd)))
    text = page.read_text()
    # The checkpoint's own tokens: [CLS], [SEP] and word pieces of the tiny vocabulary.
    assert "[CLS]" in text and "[SEP]" in text and "##" in text
    assert "Integrated Gradients" in text


def test_a_sweep_with_pruning_runs_its_trials(tiny):
    done = run_cli("sweep", "sweep=text_minilm", f"model.checkpoint={tiny.checkpoint}", "trainer=smoke",
                   "trainer.max_epochs=2", "data.max_len=32", "sweep.n_trials=2", "pruner=threshold",
                   "sweep.pruner.lower=2.0", cwd=tiny.cwd, env=tiny.env, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    trials = [r for r in runs_in(tiny.cwd, "sweep-text_minilm") if r.data.tags.get("sweeplab.role") == "trial"]
    assert len(trials) == 2
    assert all(r.data.tags["sweeplab.stopped"] == "PRUNED" for r in trials)
    assert {r.data.tags["sweeplab.checkpoint"] for r in trials} == {str(tiny.checkpoint)}
    assert {"finetune.backbone_lr_scale", "scheduler.warmup", "optimizer.lr"} <= trials[0].data.params.keys()


@pytest.mark.parametrize("remove, message", [
    ("config.json", "config.json is missing"),
    ("model.safetensors", "no weights: model.safetensors or pytorch_model.bin is missing"),
    ("tokenizer", "no tokenizer: one of tokenizer.json, vocab.txt"),
])
def test_a_checkpoint_missing_a_file_exits_2_and_writes_nothing(tiny, tmp_path, remove, message):
    broken = tmp_path / "broken"
    shutil.copytree(tiny.checkpoint, broken)
    for name in (["tokenizer.json", "vocab.txt"] if remove == "tokenizer" else [remove]):
        (broken / name).unlink()
    done = run_cli("train", *tiny.args, f"model.checkpoint={broken}", cwd=tmp_path, env=tiny.env)
    assert done.returncode == 2, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and str(broken) in lines[0], done.stderr
    assert not (tmp_path / "mlruns").exists()


def test_a_tokenizer_that_does_not_match_the_model_exits_2(tiny, tmp_path):
    mismatched = tmp_path / "mismatched"
    shutil.copytree(tiny.checkpoint, mismatched)
    # Another checkpoint's tokenizer, with more tokens than this model's embedding has rows.
    other = write_tiny_bert(tmp_path / "other", extra_words=("cinema", "plot", "actor"))
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json"):
        shutil.copy(other / name, mismatched / name)
    done = run_cli("train", *tiny.args, f"model.checkpoint={mismatched}", cwd=tmp_path, env=tiny.env)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "the tokenizer does not match the model" in lines[0], done.stderr
    assert not (tmp_path / "mlruns").exists()


def test_register_then_the_alias_answers_raw_strings(tiny):
    import mlflow

    done = run_cli("register", tiny.run.info.run_id, "tiny_text", cwd=tiny.cwd, env=tiny.env)
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(store_uri(tiny.cwd))
    assert client.get_model_version_by_alias("tiny_text", "champion").run_id == tiny.run.info.run_id
    mlflow.set_tracking_uri(store_uri(tiny.cwd))
    frame = mlflow.pyfunc.load_model("models:/tiny_text@champion").predict(SENTENCES)
    assert list(frame.columns) == ["label", "proba_rotten", "proba_fresh"] and len(frame) == len(SENTENCES)


def test_init_from_a_fine_tuned_run_with_frozen_embeddings(tiny):
    args = [arg for arg in tiny.args if not arg.startswith("name=")]
    done = run_cli("train", *args, f"finetune.init_from={tiny.run.info.run_id}",
                   "finetune.freeze=[backbone.embeddings.*]", "trainer.max_epochs=2", "finetune.unfreeze_at_epoch=1",
                   "name=tiny_bert_again", cwd=tiny.cwd, env=tiny.env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"tensors from runs:/{tiny.run.info.run_id}/checkpoints/best.ckpt" in done.stdout
    (run,) = runs_in(tiny.cwd, "tiny_bert_again")
    assert run.data.tags["sweeplab.init_from.run_id"] == tiny.run.info.run_id
    assert run.data.tags["sweeplab.checkpoint.sha256"] == tiny.run.data.tags["sweeplab.checkpoint.sha256"]


def test_init_from_a_run_that_kept_only_the_raw_text_model_exits_2(tiny, tmp_path):
    args = [arg for arg in tiny.args if not arg.startswith("name=")]
    done = run_cli("train", *args, "tracking.log_checkpoint=false", "name=no_checkpoint", cwd=tiny.cwd, env=tiny.env)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = runs_in(tiny.cwd, "no_checkpoint")
    refused = run_cli("train", *args, f"finetune.init_from={run.info.run_id}", "name=refused",
                      cwd=tiny.cwd, env=tiny.env)
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert refused.returncode == 2 and len(lines) == 1, refused.stderr[-3000:]
    assert f"finetune.init_from={run.info.run_id}" in lines[0] and "log_checkpoint=true" in lines[0], lines[0]
    assert runs_in(tiny.cwd, "refused") == []
