"""Any Lightning code through sweeplab, end to end: a plain LightningModule and LightningDataModule that
import nothing of sweeplab (tests/user_code) are trained, swept, reproduced, compared and registered
through the installed command with `--config-dir` and `PYTHONPATH`."""

from __future__ import annotations

import re
from pathlib import Path

import mlflow
import optuna
import pytest
from mlflow import MlflowClient

from conftest import run_cli, runs_in, store_uri

USER = Path(__file__).parent / "user_code"
ENV = {"PYTHONPATH": str(USER)}
CONF = ["--config-dir", str(USER / "conf")]


def history(cwd: Path, run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in MlflowClient(store_uri(cwd)).get_metric_history(run_id, key)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("user_train")
    done = run_cli("train", *CONF, "experiment=my_lightning", cwd=cwd, env=ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = runs_in(cwd, "my_lightning")
    return cwd, run, done


def test_the_users_own_metrics_reach_mlflow_per_epoch_and_per_step(trained):
    cwd, run, _ = trained
    assert run.info.status == "FINISHED"
    for key in ("val_loss", "val_acc"):     # self.log_dict in validation_step: per epoch, at step = epoch
        assert [step for step, _ in history(cwd, run.info.run_id, key)] == [0, 1, 2], key
    for key in ("test_loss", "test_acc"):
        assert len(history(cwd, run.info.run_id, key)) == 1, key
    # self.log(on_step=True) in training_step: every log_every_n_steps=2 steps, at the global step
    # (19 batches an epoch, 3 epochs).
    steps = [step for step, _ in history(cwd, run.info.run_id, "train_loss")]
    assert len(steps) >= 20 and steps == sorted(steps) and steps[-1] > 50, steps
    assert {s % 2 for s in steps} == {1}
    assert run.data.params["model._target_"] == "my_lightning.model.DigitsMLP"


def test_the_run_records_the_optimizer_the_module_built_not_sweeplabs(trained):
    _, run, done = trained
    params = run.data.params
    # configure_optimizers: SGD at the module's lr (0.5); sweeplab's unused Adam default is recorded nowhere.
    assert (params["optimizer._target_"], params["optimizer.lr"], params["optimizer.momentum"]) == \
        ("torch.optim.SGD", "0.5", "0")
    assert not [key for key in params if key.startswith("scheduler")]
    assert re.search(r"^train/lr\s+0\.5$", done.stdout, re.M), done.stdout   # not a range from 0.001
    assert "0.001" not in done.stdout


def test_a_sweep_over_sweeplabs_optimizer_for_a_module_with_its_own_exits_2(tmp_path, monkeypatch, capsys):
    from sweeplab.cli import main

    monkeypatch.syspath_prepend(str(USER))
    monkeypatch.chdir(tmp_path)
    code = main(["sweep", *CONF, "sweep=my_lightning", "sweep.params.optimizer.lr=interval(0.01, 0.1)"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("sweeplab: error: sweep.params.optimizer.lr: my_lightning.model.DigitsMLP builds "
                               "its own optimizer"), lines[0]
    assert not (tmp_path / "mlruns").exists()


def test_a_module_without_sweeplab_extras_is_tagged_so(trained):
    _, run, _ = trained
    assert run.data.tags["sweeplab.data_fingerprint"] == "none"
    assert run.data.tags["sweeplab.optimizer_groups"] == "none"
    assert "sweeplab.model" not in run.data.tags    # the model was logged


def test_the_lightning_module_itself_is_the_model_and_predicts_on_a_real_batch(trained, monkeypatch):
    cwd, run, _ = trained
    monkeypatch.syspath_prepend(str(USER))
    from my_lightning.data import DigitsData

    data = DigitsData(batch_size=17)
    data.setup("test")
    inputs, targets = next(iter(data.test_dataloader()))
    mlflow.set_tracking_uri(store_uri(cwd))
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    logits = model.predict(inputs.numpy())
    assert logits.shape == (17, 10)
    # The best checkpoint's weights (val_acc ≈ 0.9 after 3 epochs), not a fresh network's.
    assert (logits.argmax(1) == targets.numpy()).mean() > 0.6
    assert model.metadata.signature.inputs.to_dict()[0]["tensor-spec"]["shape"] == (-1, 64)


def test_print_config_says_the_optimizer_groups_do_not_apply(monkeypatch, capsys):
    from sweeplab.cli import main

    monkeypatch.syspath_prepend(str(USER))
    assert main(["train", "--print-config", *CONF, "experiment=my_lightning"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("# optimizer and scheduler do not apply: my_lightning.model.DigitsMLP"), last
    assert main(["train", "--print-config", "experiment=digits_cnn"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("# optimizer and scheduler apply")


def test_a_monitor_metric_the_module_does_not_log_fails_naming_what_it_logs(tmp_path, monkeypatch, capsys):
    # In this process (the command's own main), to save starting one more.
    from sweeplab.cli import main

    monkeypatch.syspath_prepend(str(USER))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)   # mlflow.set_tracking_uri of another test sets it
    code = main(["train", *CONF, "experiment=my_lightning", "monitor.metric=val/acc", "trainer.max_epochs=1",
                 "tracking.log_model=false"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("sweeplab:")]
    assert code == 2 and len(lines) == 1, lines
    assert "monitor.metric=val/acc is not logged by my_lightning.model.DigitsMLP" in lines[0]
    assert "it logs: train_loss, val_acc, val_loss" in lines[0]
    (run,) = runs_in(tmp_path, "my_lightning")
    assert run.info.status == "FAILED" and "val/acc is not logged" in run.data.tags["sweeplab.error"]


def trials_of(cwd: Path, study: str):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(cwd / "mlruns" / "optuna.journal")))
    trials = optuna.load_study(study_name=study, storage=storage).get_trials()
    client = MlflowClient(store_uri(cwd))
    experiment = client.get_experiment_by_name(f"sweep-{study}")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags["sweeplab.role"] == "sweep"]
    children = {int(r.data.tags["optuna.trial_number"]): r for r in runs if r.data.tags["sweeplab.role"] == "trial"}
    return trials, parent, children


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """The user's sweep (sweeps/my_lightning.yaml): lr 0 (pruned) and lr 2 (complete), on val_loss."""
    cwd = tmp_path_factory.mktemp("user_sweep")
    done = run_cli("sweep", *CONF, "sweep=my_lightning", "sweep.metric=val_loss", "sweep.direction=minimize",
                   cwd=cwd, env=ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    return cwd, *trials_of(cwd, "my_lightning")


def test_sweep_prunes_on_the_users_metric_and_reports_each_trials_best_epoch(swept):
    cwd, trials, parent, children = swept
    by_state = {t.state.name: t for t in trials}
    assert set(by_state) == {"COMPLETE", "PRUNED"}, [t.state.name for t in trials]
    assert by_state["PRUNED"].params["model.lr"] == 0.0
    complete = by_state["COMPLETE"]
    values = [v for _, v in history(cwd, children[complete.number].info.run_id, "val_loss")]
    assert len(values) == 3 and min(values) != values[-1]   # its best epoch is not its last
    assert complete.value == min(values)
    # The trial's run records the optimizer its module built, at the trial's sampled model.lr.
    assert children[complete.number].data.params["optimizer.lr"] == repr(complete.params["model.lr"])
    assert parent.data.params["sweep.objective"] == "best"
    assert parent.data.metrics["best/val_loss"] == min(values)


def test_objective_last_and_early_stopping_from_config(tmp_path):
    # One worker process, no driver (it records the summary on the parent run itself). lr=2: val_loss
    # 2.01 after the first epoch, worse after the second, so early stopping (patience 1, from the
    # callbacks group, as a sweep param) ends the trial there, well before max_epochs.
    done = run_cli("worker", *CONF, "sweep=my_lightning", "sweep.objective=last", "sweep.n_trials=1",
                   "sweep.params.model.lr=choice(2.0)", "trainer.max_epochs=6", "callbacks=early_stopping",
                   "sweep.params.callbacks.early_stopping.patience=choice(1)", cwd=tmp_path, env=ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    (trial,), parent, children = trials_of(tmp_path, "my_lightning")
    run = children[trial.number]
    values = [v for _, v in history(tmp_path, run.info.run_id, "val_loss")]
    assert len(values) == 2, values
    assert run.data.params["callbacks.early_stopping.patience"] == "1"
    assert run.data.params["callbacks.early_stopping.monitor"] == "val_loss"
    assert min(values) != values[-1] and trial.value == values[-1]
    assert parent.data.params["sweep.objective"] == "last"


def test_reproduce_compare_and_register_the_users_best_trial(swept):
    cwd, trials, parent, children = swept
    best = children[next(t.number for t in trials if t.state.name == "COMPLETE")].info.run_id
    again = run_cli("reproduce", parent.info.run_id, "--check", cwd=cwd, env=ENV)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"reproducing run {best}" in again.stdout and "val_loss" in again.stdout
    compared = run_cli("compare", "my_lightning", "--format", "csv", cwd=cwd)
    assert compared.returncode == 0, compared.stderr[-3000:]
    header, first = compared.stdout.splitlines()[:2]
    assert header.split(",")[3] == "val_loss" and first.startswith(best)
    registered = run_cli("register", parent.info.run_id, "user_digits", cwd=cwd)
    assert registered.returncode == 0, registered.stderr[-3000:]
    mlflow.set_tracking_uri(store_uri(cwd))
    assert mlflow.pyfunc.load_model("models:/user_digits@champion").metadata.run_id == best
