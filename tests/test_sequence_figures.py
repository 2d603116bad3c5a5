"""LogFigures: after testing, the data's and the model's figures and reference metrics land in the MLflow run."""

from __future__ import annotations

import mlflow
import pytorch_lightning as pl
from mlflow import MlflowClient

from sweeplab.data.co2 import CO2DataModule
from sweeplab.models.lstm import LSTM
from sweeplab.models.regressor import Regressor
from sweeplab.tracking.figures import LogFigures
from sweeplab.tracking.metric_logger import MlflowBatchLogger


def test_forecast_figure_and_seasonal_naive_reference_are_logged(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    experiment = client.create_experiment("figures", artifact_location=(tmp_path / "artifacts").as_uri())
    data = CO2DataModule(window=26, horizon=4)
    model = Regressor(LSTM(hidden_size=8, input_size=1, embedding_dim=4, bidirectional=False), outputs=4)
    try:
        with mlflow.start_run(experiment_id=experiment) as run:
            logger = MlflowBatchLogger(client, run.info.run_id)
            trainer = pl.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, limit_test_batches=1,
                                 accelerator="cpu", logger=logger, callbacks=[LogFigures()],
                                 enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
            trainer.fit(model, datamodule=data)
            trainer.test(model, datamodule=data, verbose=False)
            logger.flush()
    finally:
        mlflow.set_tracking_uri(None)
    record = client.get_run(run.info.run_id)
    assert record.data.metrics["test/seasonal_naive_rmse"] == data.reference["test/seasonal_naive_rmse"]
    assert "test/rmse" in record.data.metrics
    assert [a.path for a in client.list_artifacts(run.info.run_id, "figures")] == ["figures/forecast.png"]
