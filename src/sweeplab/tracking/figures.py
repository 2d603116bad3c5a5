"""A callback that records, after testing, the figures and reference metrics a run's model and data offer."""

from __future__ import annotations

import mlflow
import pytorch_lightning as pl
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from sweeplab.extras import DrawsFigures, ReferenceMetrics

FOLDER = "figures"


class LogFigures(pl.Callback):
    """After the test (so on the best checkpoint's weights), logs to the active MLflow run:

    - `figures/<name>.png` for each figure of `datamodule.figures(module)` and
      `module.figures(datamodule)` (e.g. a forecast of the test period, attention heatmaps);
    - the metrics of `datamodule.reference_metrics()` (e.g. `test/seasonal_naive_rmse`), through
      the trainer's loggers, beside `test/*`.

    Each is an optional extra (sweeplab.extras: DrawsFigures, ReferenceMetrics). Data and models
    draw with matplotlib and know nothing of MLflow.
    """

    @rank_zero_only
    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        datamodule = trainer.datamodule
        if isinstance(datamodule, ReferenceMetrics):
            for logger in trainer.loggers:
                logger.log_metrics(datamodule.reference_metrics(), step=trainer.current_epoch)
        if mlflow.active_run() is None:
            return
        figures = {}
        if isinstance(datamodule, DrawsFigures):
            figures.update(datamodule.figures(pl_module))
        if isinstance(pl_module, DrawsFigures):
            figures.update(pl_module.figures(datamodule))
        for name, figure in figures.items():
            mlflow.log_figure(figure, f"{FOLDER}/{name}.png")
