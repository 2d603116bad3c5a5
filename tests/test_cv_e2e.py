"""k-fold cross-validation end to end: folds of the non-test examples, nested fold runs, cv/ stats, CV sweeps."""

from __future__ import annotations

import statistics

import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from conftest import run_cli, runs_in, store_uri
from test_sweep_e2e import study_of

CV = ["experiment=digits_cnn", "trainer=smoke", "data.folds=3", "tracking.log_model=false"]


def _digits(**settings):
    from sweeplab.data.digits import DigitsDataModule

    data = DigitsDataModule(**settings)
    data.setup()
    return data._splits


@pytest.mark.parametrize("strategy", ["kfold", "stratified", "timeseries"])
def test_folds_divide_train_and_val_and_never_touch_test(strategy):
    plain = _digits()
    folds = [_digits(folds=3, fold=k, fold_strategy=strategy) for k in range(3)]
    # Normalisation is fitted per fold, so compare raw labels and sizes, and the test rows exactly.
    pool = len(plain["train"]) + len(plain["val"])
    for split in folds:
        assert (split["test"].tensors[1] == plain["test"].tensors[1]).all()
    if strategy == "timeseries":   # validation blocks in order, each fold training on all before its block
        sizes = [len(split["train"]) for split in folds]
        assert sizes == sorted(sizes) and len(folds[-1]["train"]) + len(folds[-1]["val"]) == pool
    else:                          # the validation folds partition the pool; the rest of it trains
        assert all(len(split["train"]) + len(split["val"]) == pool for split in folds)
        assert sum(len(split["val"]) for split in folds) == pool


def test_fold_normalisation_is_fitted_on_the_fold_training_part():
    split = _digits(folds=3, fold=1, fold_strategy="kfold")
    train, val = split["train"].tensors[0], split["val"].tensors[0]
    # Standardised with the fold's own training pixels: mean 0 and std 1 over exactly those, not the pool.
    assert abs(float(train.mean())) < 1e-4 and abs(float(train.std(unbiased=False)) - 1) < 1e-3
    pooled = torch.cat([train, val])
    assert abs(float(pooled.mean())) > 1e-4


def test_text_and_co2_folds():
    from sweeplab.data.co2 import CO2DataModule
    from sweeplab.data.rotten_tomatoes import RottenTomatoesDataModule

    text = RottenTomatoesDataModule(folds=4, fold=2, train_size=None)
    plain = RottenTomatoesDataModule()
    text.setup(), plain.setup()
    assert len(text._splits["train"]) + len(text._splits["val"]) == len(plain._splits["train"]) + len(plain._splits["val"])
    assert (text._splits["test"].tensors[1] == plain._splits["test"].tensors[1]).all()

    series = [CO2DataModule(folds=3, fold=k, window=26, horizon=4) for k in range(3)]
    whole = CO2DataModule(window=26, horizon=4)
    for data in (*series, whole):
        data.setup()
    # Time order: each later fold trains on more weeks, and the test windows are the same for every fold.
    sizes = [len(d._splits["train"]) for d in series]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    for data in series:
        assert (data.test_times == whole.test_times).all()
    with pytest.raises(ValueError, match="allows timeseries"):
        CO2DataModule(folds=3, fold_strategy="kfold")


@pytest.fixture(scope="module")
def cv_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("cv")
    done = run_cli("train", *CV, "tracking.log_model=true", cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return cwd, done


def test_cv_run_has_nested_folds_and_their_mean_and_std(cv_run):
    cwd, done = cv_run
    runs = runs_in(cwd, "digits_cnn")
    (cv,) = [r for r in runs if "sweeplab.folds" in r.data.tags]
    folds = sorted((r for r in runs if r.data.tags.get("sweeplab.role") == "fold"), key=lambda r: r.info.run_name)
    assert [r.info.run_name for r in folds] == ["fold-0", "fold-1", "fold-2"]
    assert all(r.data.tags["mlflow.parentRunId"] == cv.info.run_id for r in folds)
    assert [r.data.params["data.fold"] for r in folds] == ["0", "1", "2"]
    assert cv.data.tags["sweeplab.fold_run_ids"].split(",") == [r.info.run_id for r in folds]
    client = MlflowClient(store_uri(cwd))
    best = []   # each fold's val/acc at the epoch whose checkpoint was kept (the first best)
    for run in folds:
        history = sorted(client.get_metric_history(run.info.run_id, "val/acc"), key=lambda m: m.step)
        best.append(max(m.value for m in history))
    assert cv.data.metrics["cv/val/acc_mean"] == pytest.approx(statistics.fmean(best))
    assert cv.data.metrics["cv/val/acc_std"] == pytest.approx(statistics.stdev(best))
    tests = [r.data.metrics["test/acc"] for r in folds]
    assert cv.data.metrics["cv/test/acc_mean"] == pytest.approx(statistics.fmean(tests))
    assert "mean ± std over 3 folds" in done.stdout and f"MLflow run {cv.info.run_id}" in done.stdout
    # One line per fold, with its metric (the value its kept checkpoint had) and the time left.
    lines = [line for line in done.stdout.splitlines() if line.startswith("fold ")]
    assert [line.split(":")[0] for line in lines] == ["fold 1/3", "fold 2/3", "fold 3/3"], done.stdout
    assert [float(line.split()[3]) for line in lines] == pytest.approx(best, abs=5e-5)
    assert "left)" in lines[0] and "left" not in lines[2]
    assert "Restoring states from the checkpoint path" not in done.stdout + done.stderr


def test_compare_shows_cv_runs_not_their_folds(cv_run):
    cwd, _ = cv_run
    shown = run_cli("compare", "digits_cnn", "--format", "json", cwd=cwd)
    assert shown.returncode == 0, shown.stderr
    import json

    (row,) = json.loads(shown.stdout)
    (cv,) = [r for r in runs_in(cwd, "digits_cnn") if "sweeplab.folds" in r.data.tags]
    assert row["run_id"] == cv.info.run_id
    assert row["val/acc"] == pytest.approx(cv.data.metrics["cv/val/acc_mean"])
    assert row["val/acc std"] == pytest.approx(cv.data.metrics["cv/val/acc_std"])


def test_register_takes_the_best_fold_model(cv_run):
    cwd, _ = cv_run
    (cv,) = [r for r in runs_in(cwd, "digits_cnn") if "sweeplab.folds" in r.data.tags]
    folds = {r.info.run_id: r for r in runs_in(cwd, "digits_cnn") if r.data.tags.get("sweeplab.role") == "fold"}
    best = cv.data.tags["sweeplab.cv_best_fold_run_id"]
    scores = {run_id: max(m.value for m in MlflowClient(store_uri(cwd)).get_metric_history(run_id, "val/acc"))
              for run_id in folds}
    assert scores[best] == max(scores.values())
    done = run_cli("register", cv.info.run_id, "cv_digits", cwd=cwd)
    assert done.returncode == 0, done.stderr[-2000:]
    version = MlflowClient(store_uri(cwd)).get_model_version_by_alias("cv_digits", "champion")
    assert version.run_id == best


def test_reproduce_a_cv_run(cv_run):
    cwd, _ = cv_run
    (cv,) = [r for r in runs_in(cwd, "digits_cnn") if "sweeplab.folds" in r.data.tags]
    again = run_cli("reproduce", cv.info.run_id, "--check", cwd=cwd)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "cv/val/acc_mean" in again.stdout


@pytest.mark.parametrize("args, message", [
    (["data.folds=1"], "data.folds=1: must be a whole number of at least 2"),
    (["data.fold_strategy=shuffled"], "data.fold_strategy=shuffled: this data allows kfold, stratified, timeseries"),
])
def test_bad_fold_settings_exit_2_before_any_run(tmp_path, args, message):
    done = run_cli("train", *CV, *args, cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "mlruns").exists() or not runs_in(tmp_path, "digits_cnn")


def test_cv_sweep_reports_fold_means_and_prunes_inside_the_first_fold(tmp_path):
    done = run_cli("sweep", "sweep=digits_cnn_cv", "trainer=smoke", "trainer.max_epochs=3", "sweep.n_trials=5",
                   "tracking.log_model=false", "sweep.pruner.n_startup_trials=1", "sweep.pruner.n_warmup_steps=0",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    study = study_of(tmp_path, name="digits_cnn_cv")
    runs = runs_in(tmp_path, "sweep-digits_cnn_cv")
    trials = {r.data.tags["optuna.trial_number"]: r for r in runs if r.data.tags.get("sweeplab.role") == "trial"}
    folds_of = {cv: [r for r in runs if r.data.tags.get("sweeplab.cv_run_id") == cv] for cv in
                (t.info.run_id for t in trials.values())}
    client = MlflowClient(store_uri(tmp_path))
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    assert complete and pruned
    for trial in complete:
        run = trials[str(trial.number)]
        folds = sorted(folds_of[run.info.run_id], key=lambda r: r.info.run_name)
        assert len(folds) == 3
        # Fold k's n-th epoch was reported as step 3k + n, and the objective is the mean of the folds' best epochs.
        assert sorted(trial.intermediate_values) == list(range(1, 10))
        best = [max(m.value for m in client.get_metric_history(f.info.run_id, "val/acc")) for f in folds]
        assert trial.value == pytest.approx(np.mean(best))
        assert [trial.intermediate_values[3 * k + n] for k in range(3) for n in range(1, 4)] == [
            m.value for f in folds for m in sorted(client.get_metric_history(f.info.run_id, "val/acc"),
                                                   key=lambda m: m.step)]
    stopped_early = [t for t in pruned if max(t.intermediate_values) <= 3]
    assert stopped_early, [t.intermediate_values for t in pruned]
    for trial in stopped_early:   # pruned inside its first fold: no later fold ran
        run = trials[str(trial.number)]
        assert [f.info.run_name.split()[0] for f in folds_of[run.info.run_id]] == ["fold-0"]
        assert run.data.tags["sweeplab.stopped"] == "PRUNED"
