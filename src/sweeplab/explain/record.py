"""Rebuild a recorded run's data module and trained network from its MLflow record alone (config, checkpoint)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import pytorch_lightning as pl
import torch
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig

from sweeplab.errors import ConfigError
from sweeplab.experiment import build_modules
from sweeplab.explain.protocols import NotExplainable
from sweeplab.tracking import lookup
from sweeplab.tracking.lookup import no_progress_bar

CHECKPOINTS = "checkpoints"


@dataclass
class Rebuilt:
    cfg: DictConfig
    datamodule: pl.LightningDataModule
    module: torch.nn.Module   # the LightningModule with the checkpoint's weights, or the logged model's network


def rebuild(client, run: Run) -> Rebuilt:
    """The run's config -> its data module (set up) and module, with the trained weights of its best
    checkpoint; without a checkpoint (tracking.log_checkpoint=false), the network of its logged model."""
    cfg = lookup.run_config(client, run)
    # As run_experiment builds them: the same seed first, so whatever they draw at random is the run's.
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule, module = build_modules(cfg)
    try:
        datamodule.prepare_data()
        datamodule.setup("fit")
        datamodule.setup("test")
    except (ValueError, OSError) as e:
        raise ConfigError(str(e)) from None
    return Rebuilt(cfg, datamodule, _trained(client, run, module))


def _trained(client, run: Run, module: torch.nn.Module) -> torch.nn.Module:
    run_id = run.info.run_id
    checkpoints = [f.path for f in client.list_artifacts(run_id, CHECKPOINTS) if f.path.endswith(".ckpt")]
    if checkpoints:
        with tempfile.TemporaryDirectory(prefix="sweeplab-explain-") as folder, no_progress_bar():
            path = client.download_artifacts(run_id, sorted(checkpoints)[0], folder)
            saved = torch.load(path, map_location="cpu", weights_only=False)
        module.load_state_dict(saved["state_dict"])
        return module
    import mlflow

    mlflow.set_tracking_uri(client.tracking_uri)
    try:
        with no_progress_bar():
            return mlflow.pytorch.load_model(f"runs:/{run_id}/model")   # saved from the CPU (model_export)
    except (MlflowException, OSError):
        raise NotExplainable(f"run {run_id} has neither a checkpoint ({CHECKPOINTS}/) nor a model to explain; "
                             "train with tracking.log_checkpoint=true or tracking.log_model=true") from None
