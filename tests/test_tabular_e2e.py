"""data=tabular_csv with model=mlp / mlp_regressor end to end: the installed command, real MLflow on SQLite,
raw rows (missing values, category strings) into the exported model in a process without sweeplab."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from hydra.utils import instantiate
from mlflow import MlflowClient
from omegaconf import OmegaConf
from sklearn.model_selection import StratifiedKFold

from conftest import run_cli, runs_in, store_uri
from sweeplab.data.tabular_csv import TabularCSVDataModule
from sweeplab.data.tabular_examples import MISSING_SHARE, write_example

SMOKE = ["trainer=smoke", "trainer.max_epochs=2", "tracking.system_metrics_interval=null"]


@pytest.fixture(scope="module")
def cancer(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("breast_cancer") / "breast_cancer.csv"
    write_example("breast_cancer", path)
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory, cancer):
    """One regression run (its example CSV written by the run itself) and one classification run on fold 1 of 3."""
    cwd = tmp_path_factory.mktemp("tabular")
    diabetes = cwd / "examples" / "diabetes.csv"
    regression = run_cli("train", "experiment=diabetes_mlp", *SMOKE, f"data.path={diabetes}", cwd=cwd)
    assert regression.returncode == 0, regression.stderr[-3000:]
    classification = run_cli("train", "experiment=breast_cancer_mlp", *SMOKE, f"data.path={cancer}",
                             "data.folds=3", "data.fold=1", cwd=cwd)
    assert classification.returncode == 0, classification.stderr[-3000:]
    (regression_run,) = runs_in(cwd, "diabetes_mlp")
    (classification_run,) = runs_in(cwd, "breast_cancer_mlp")
    return SimpleNamespace(cwd=cwd, diabetes=diabetes, cancer=cancer,
                           regression=regression_run, classification=classification_run)


def _artifact(cwd: Path, run, name: str) -> Path:
    folder = cwd / "downloads" / run.info.run_id
    folder.mkdir(parents=True, exist_ok=True)
    return Path(MlflowClient(store_uri(cwd)).download_artifacts(run.info.run_id, name, str(folder)))


def _run_config(cwd: Path, run):
    """The resolved config a run was trained with (its config.yaml artifact)."""
    return OmegaConf.load(_artifact(cwd, run, "config.yaml"))


def test_both_tasks_train_and_log_their_metrics(runs):
    regression, classification = runs.regression.data.metrics, runs.classification.data.metrics
    for key in ("val/rmse", "val/mse", "val/mae", "test/rmse", "test/train_mean_rmse"):
        assert math.isfinite(regression[key]), key
    for key in ("val/acc", "val/f1", "test/acc", "test/f1", "test/majority_class_acc"):
        assert 0 <= classification[key] <= 1, key
    assert runs.regression.data.params["data.task"] == "regression"
    assert runs.classification.data.params["model.backbone._target_"] == "sweeplab.models.mlp.MLP"


def test_the_example_csv_really_has_missing_values(runs):
    table = pd.read_csv(runs.diabetes)   # written by the regression run: data.example=diabetes, the file was missing
    features = table.drop(columns="progression")
    assert features.isna().mean().round(3).eq(MISSING_SHARE).all()
    assert table["progression"].notna().all()
    assert set(features["bmi_band"].dropna()) == {"normal", "overweight", "obese"}
    assert set(features["sex"].dropna()) == {"sex1", "sex2"}


def test_preprocessing_is_fitted_on_training_rows_only(tmp_path):
    original = tmp_path / "breast_cancer.csv"
    write_example("breast_cancer", original)
    before = _fitted_with(original)
    table = pd.read_csv(original)
    held_out = np.concatenate([before.split_rows["val"], before.split_rows["test"]])
    # Values that exist only in validation and test rows: an outlier, a category never seen in training.
    table.loc[held_out, "mean radius"] = 1e6
    table.loc[held_out, "size_band"] = "only_in_held_out_rows"
    changed = tmp_path / "changed.csv"
    table.to_csv(changed, index=False)
    after = _fitted_with(changed)

    assert all(np.array_equal(before.split_rows[k], after.split_rows[k]) for k in before.split_rows)
    assert _statistics(after) == _statistics(before)
    unseen = after.transformer.transform(after.raw_rows(len(before.split_rows["val"])))
    band_columns = [i for i, name in enumerate(after.transformer.get_feature_names_out()) if "size_band" in name]
    assert not unseen[:, band_columns].any()   # the unseen category encodes as all zeros
    # The same change in one training row does move the statistics: the comparison above can fail.
    table.loc[before.split_rows["train"][0], "mean radius"] = 1e6
    table.to_csv(changed, index=False)
    assert _statistics(_fitted_with(changed)) != _statistics(before)


def test_columns_are_inferred_unless_named(cancer):
    inferred = _fitted_with(cancer)
    assert inferred.columns[1] == ["size_band"] and len(inferred.columns[0]) == 30
    named = _fitted_with(cancer, numeric=["mean texture"], categorical=["mean radius"])
    assert named.columns == (["mean texture"], ["mean radius"])   # a numeric column read as categories
    assert all(isinstance(v, str) for v in named.raw_rows(20)["mean radius"].dropna())
    excluded = _fitted_with(cancer, exclude=["size_band", "mean area"])
    assert excluded.columns[1] == [] and "mean area" not in excluded.columns[0]


def _statistics(data: TabularCSVDataModule) -> dict:
    numeric = data.transformer.named_transformers_["numeric"]
    categorical = data.transformer.named_transformers_["categorical"]
    return {"median": numeric["impute"].statistics_.tolist(), "mean": numeric["scale"].mean_.tolist(),
            "scale": numeric["scale"].scale_.tolist(), "mode": categorical["impute"].statistics_.tolist(),
            "categories": [c.tolist() for c in categorical["one_hot"].categories_]}


# Runs with sweeplab unimportable: the model must load and predict with mlflow, torch, scikit-learn alone.
PREDICT = textwrap.dedent("""
    import json, sys
    sys.modules["sweeplab"] = None
    import mlflow, pandas as pd
    mlflow.set_tracking_uri(sys.argv[1])
    answers = {}
    for run_id, rows in json.loads(sys.argv[2]).items():
        model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
        frame = pd.read_pickle(rows)
        answers[run_id] = {"all": model.predict(frame).to_json(orient="split"),
                           "one": model.predict(frame.head(1)).to_json(orient="split"),
                           "inputs": [c["name"] for c in model.metadata.signature.inputs.to_dict()]}
    print(json.dumps(answers))
""")


def test_exported_model_predicts_from_raw_rows(runs):
    expected = {}
    for run in (runs.regression, runs.classification):
        cfg = _run_config(runs.cwd, run)
        data = instantiate(cfg.data)
        data.setup()
        module = instantiate(cfg.model)
        module.load_state_dict(torch.load(_artifact(runs.cwd, run, "checkpoints/best.ckpt"),
                                          weights_only=False)["state_dict"])
        module.eval()
        with torch.no_grad():   # the module's own predictions, on the data module's preprocessed tensor
            outputs = module(data._splits["val"].tensors[0]).numpy()
        # The same rows raw, as a user's own reader may give them: NaN for missing numbers, None for missing
        # categories, category strings, whole numbers as integers, numbers as text.
        raw = data.raw_rows(len(outputs))
        numeric, categorical = data.columns
        assert raw.isna().any().any() and all(isinstance(v, str) for name in categorical for v in raw[name].dropna())
        raw[categorical[0]] = _none_for_missing(raw[categorical[0]])
        raw[numeric[-1]] = _none_for_missing(raw[numeric[-1]].astype(str))   # repr: the same floats back
        whole = [name for name in numeric[:-1] if (raw[name].dropna() % 1 == 0).all()]
        raw[whole] = raw[whole].astype("Int64")
        raw.to_pickle(runs.cwd / f"{run.info.run_id}.pkl")
        expected[run.info.run_id] = (data, outputs)

    done = subprocess.run([sys.executable, "-c", PREDICT, store_uri(runs.cwd),
                           json.dumps({run_id: str(runs.cwd / f"{run_id}.pkl") for run_id in expected})],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    answers = json.loads(done.stdout.strip().splitlines()[-1])

    for run_id, (data, outputs) in expected.items():
        predicted = pd.read_json(io.StringIO(answers[run_id]["all"]), orient="split")
        one = pd.read_json(io.StringIO(answers[run_id]["one"]), orient="split")
        assert answers[run_id]["inputs"] == [*data.columns[0], *data.columns[1]]
        pd.testing.assert_frame_equal(one, predicted.head(1))
        if data.classes is None:
            np.testing.assert_allclose(predicted["progression"], outputs[:, 0] * data.target_std + data.target_mean,
                                       rtol=1e-5)
        else:
            probabilities = torch.softmax(torch.from_numpy(outputs), dim=1).numpy()
            assert predicted["diagnosis"].tolist() == [data.classes[i] for i in outputs.argmax(axis=1)]
            np.testing.assert_allclose(predicted[[f"proba_{c}" for c in data.classes]], probabilities, atol=1e-6)


def _none_for_missing(column: pd.Series) -> pd.Series:
    return column.astype(object).where(column.notna() & (column != "nan"), None)


def test_bad_target_exits_2_with_one_line_and_no_run(cancer, tmp_path):
    done = run_cli("train", "experiment=breast_cancer_mlp", *SMOKE, f"data.path={cancer}", "data.target=colour",
                   cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sweeplab: error: data.target=colour:"), done.stderr
    assert "its columns are: mean radius, size_band, mean texture" in lines[0]
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.parametrize("settings, message", [
    ({"path": "/nonexistent.csv"}, "data.path=/nonexistent.csv: no such file; give a CSV file with a header row "
     "naming data.target=diagnosis, or data.example=diabetes|breast_cancer to have one written there "
     "(python -m sweeplab.data.tabular_examples DIR writes them all)"),
    ({"num_classes": 3}, "data.num_classes=3: column 'diagnosis' of"),
    ({"numeric": ["mean radius", "acidity"]}, "data.numeric: "),
    ({"numeric": ["size_band"]}, "holds text ('"),
    ({"task": "regression", "num_classes": None}, "data.task=regression needs numbers"),
    ({"task": "regression", "num_classes": None, "folds": 3, "fold_strategy": "stratified"},
     "data.fold_strategy=stratified: this data allows kfold, timeseries"),
    ({"input_size": 7}, "data.input_size=7: the rows of"),
])
def test_bad_settings_say_what_is_wrong_in_one_line(cancer, settings, message):
    with pytest.raises((ValueError, OSError)) as raised:   # both exit 2, before any run
        _fitted_with(cancer, **settings)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def _fitted_with(csv: Path, **settings) -> TabularCSVDataModule:
    data = TabularCSVDataModule(**{"path": str(csv), "target": "diagnosis", "num_classes": 2, **settings})
    data.setup()
    return data


def test_a_fold_run_trains_on_its_fold(runs):
    cfg = _run_config(runs.cwd, runs.classification)
    assert (cfg.data.folds, cfg.data.fold, cfg.data.fold_strategy) == (3, 1, "stratified")
    fold = instantiate(cfg.data)
    fold.setup()
    assert runs.classification.data.tags["sweeplab.data_fingerprint"] == fold.fingerprint   # what the run trained on

    plain = _fitted_with(runs.cancer)   # no folds: the same test rows; its training and validation rows pooled
    assert np.array_equal(fold.split_rows["test"], plain.split_rows["test"])
    pool = np.sort(np.concatenate([plain.split_rows["train"], plain.split_rows["val"]]))
    labels = pd.read_csv(runs.cancer)["diagnosis"].to_numpy()[pool]
    train, val = list(StratifiedKFold(3, shuffle=True, random_state=cfg.data.split_seed).split(pool, labels))[1]
    assert np.array_equal(fold.split_rows["train"], pool[train]) and np.array_equal(fold.split_rows["val"], pool[val])
    # Its preprocessing was fitted on the fold's training rows: the medians are theirs.
    numeric = fold.columns[0]
    medians = pd.read_csv(runs.cancer)[numeric].iloc[pool[train]].median().to_numpy()
    np.testing.assert_allclose(fold.transformer.named_transformers_["numeric"]["impute"].statistics_, medians)
