"""What a user reads, end to end through the installed `sweeplab`: run names, links into the MLflow UI,
the logged model's metrics, errors that say what to do, and the README's examples.

(The sweep's side of the same: test_sweep_e2e.py; `sweeplab ui`, compare, register and reproduce after a
sweep: test_after_sweep_e2e.py.)
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from conftest import run_cli, runs_in, store_uri

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-epoch digits run on a cosine schedule, best at its second epoch: (folder, its run, the output)."""
    cwd = tmp_path_factory.mktemp("trained")
    done = run_cli("train", "experiment=digits_cnn", "trainer=smoke", "scheduler=cosine", "optimizer.lr=0.01",
                   cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = runs_in(cwd, "digits_cnn")
    return cwd, run, done


def test_a_run_is_named_after_its_experiment_and_start(trained):
    # MLflow's random names are drawn after the run's seed: every run was `capable-auk-759`.
    _, run, _ = trained
    assert re.fullmatch(r"digits_cnn-\d{8}-\d{6}", run.info.run_name), run.info.run_name


def test_train_prints_the_lr_range_and_a_link_to_its_run(trained):
    _, run, done = trained
    (lr,) = [line for line in done.stdout.splitlines() if line.startswith("train/lr")]
    # The cosine schedule ends at 0: shown as the range it went through, not as a bare 0.
    assert lr.split(None, 1)[1].startswith("0 to 0.01 (cosine"), lr
    url = (f"http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
           "?workflowType=machine_learning")
    assert url in done.stdout and "sweeplab ui" in done.stdout


def test_the_logged_model_carries_its_best_epoch_and_test_metrics(trained):
    cwd, run, _ = trained
    client = MlflowClient(store_uri(cwd))
    (output,) = run.outputs.model_outputs
    model = client.get_logged_model(output.model_id)
    history = client.get_metric_history(run.info.run_id, "val/acc")
    best = max(m.value for m in history)
    best_epoch = min(m.step for m in history if m.value == best)
    assert best_epoch == 1   # not MLflow's default step 0, so the check below tells them apart
    metrics = {m.key: m for m in model.metrics}
    # The model holds the best checkpoint's weights: its page shows that epoch's metrics and the test ones.
    assert metrics["val/acc"].step == best_epoch and metrics["val/acc"].value == best
    for key in ("test/acc", "test/loss", "test/f1"):
        assert metrics[key].value == run.data.metrics[key], key
    assert output.step == best_epoch
    # Linking the test metrics to the model left one point each in the run's history.
    assert len(client.get_metric_history(run.info.run_id, "test/acc")) == 1


def test_reproduce_tells_a_bogus_run_id_without_importing_torch(trained):
    cwd, _, _ = trained
    done = run_cli("reproduce", "0" * 32, cwd=cwd, env={"PYTHONPROFILEIMPORTTIME": "1"})
    imported = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")}
    told = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("import time:")]
    assert done.returncode == 2 and len(told) == 1 and "no such run" in told[0], done.stderr[-2000:]
    assert imported and not imported & {"torch", "pytorch_lightning", "mlflow"}


USER_MODEL_CONFIG = """\
_target_: sweeplab.models.classifier.Classifier
num_classes: ${data.num_classes}
backbone: {_target_: my_models.TinyMLP, in_features: 64, hidden: 32}
"""


@pytest.mark.parametrize("args, expected", [
    # a _target_ that cannot be imported: the module, and the PYTHONPATH it is missing from
    (["--config-dir", "my_conf", "experiment=my_digits"], ["model.backbone._target_", "'my_models'", "PYTHONPATH"]),
    # a constructor's complaint names the config key that was set, not torch's parameter
    (["experiment=digits_cnn", "model.dropout=1.5"], ["model.dropout=1.5"]),
    (["experiment=digits_cnn", "optimzer=sgd"], ["did you mean optimizer?"]),
    (["experiment=digits_cnn", "trainer.max_epoch=3"], ["did you mean trainer.max_epochs?"]),
    (["experiment=digits_cnn", "sweep.n_trials=3"], ["needs a sweep: pass sweep=NAME", "digits_cnn"]),
])
def test_bad_input_says_what_to_do(tmp_path, args, expected):
    (tmp_path / "my_conf" / "model").mkdir(parents=True)
    (tmp_path / "my_conf" / "experiment").mkdir()
    (tmp_path / "my_conf" / "model" / "tiny_mlp.yaml").write_text(USER_MODEL_CONFIG)
    (tmp_path / "my_conf" / "experiment" / "my_digits.yaml").write_text(textwrap.dedent("""\
        # @package _global_
        defaults: [{override /data: digits}, {override /model: tiny_mlp}]
        name: my_digits
        """))
    done = run_cli("train", "trainer=smoke", *args, cwd=tmp_path)   # my_models.py exists nowhere
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("sweeplab: error:"), done.stderr
    assert all(text in lines[0] for text in expected), lines[0]
    assert "+optimzer=VALUE" not in lines[0]
    assert not (tmp_path / "mlruns").exists()


def test_a_sweep_key_without_a_sweep_says_a_sweep_is_needed(tmp_path):
    done = run_cli("sweep", "sweep.n_trials=3", cwd=tmp_path)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "sweep.n_trials=3 needs a sweep: pass sweep=NAME" in lines[0]


def test_readme_loads_the_model_with_the_input_shape_of_the_run_it_names(tmp_path):
    """The tour's "load the model anywhere" example names its run's experiment, and feeds it inputs of
    that experiment's shape."""
    text = README.read_text()
    snippet = re.search(r"\n# Load the trained model anywhere[^\n]*\n(?:[^\n]*\n){1,3}", text)
    assert snippet, "the tour has no 'Load the trained model anywhere' example"
    named = re.search(r"the (\w+) (?:train )?run", snippet.group(0))
    assert named, f"the example does not say which run it loads: {snippet.group(0)}"
    shape = re.search(r"np\.zeros\(\((\d+(?:, ?\d+)*)\)", snippet.group(0))
    done = run_cli("train", "--print-config", f"experiment={named.group(1)}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    input_shape = yaml.safe_load(done.stdout)["data"]["input_shape"]
    assert [int(n) for n in shape.group(1).split(",")][1:] == input_shape
