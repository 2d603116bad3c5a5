"""MlflowBatchLogger under a real Trainer: a module's `self.log` values, per step and per epoch, reach a real
MLflow store in one call per epoch, per-epoch values at step = epoch, per-step ones at the global step."""

import pytorch_lightning as pl
import torch
from mlflow import MlflowClient
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from sweeplab.tracking.epoch_stats import EpochStats
from sweeplab.tracking.metric_logger import MlflowBatchLogger

EPOCHS, BATCHES = 3, 5


class EveryStep(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(4, 2)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.layer(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)     # train_loss_step and train_loss_epoch
        self.log("batch_index", float(batch_idx), on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log_dict({"val_loss": F.cross_entropy(self.layer(x), y)})

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_per_step_and_per_epoch_values_in_one_mlflow_call_per_epoch(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = client.create_run(client.create_experiment("logger")).info.run_id
    logger = MlflowBatchLogger(client, run_id)
    calls = []
    real_log_batch = client.log_batch

    def counted(*args, **kwargs):     # the real call, counted
        calls.append(len(kwargs["metrics"]))
        return real_log_batch(*args, **kwargs)

    client.log_batch = counted
    data = TensorDataset(torch.randn(BATCHES * 8, 4), torch.randint(0, 2, (BATCHES * 8,)))
    trainer = pl.Trainer(max_epochs=EPOCHS, logger=logger, callbacks=[EpochStats()], log_every_n_steps=1,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, accelerator="cpu")
    trainer.fit(EveryStep(), DataLoader(data, batch_size=8), DataLoader(data, batch_size=8))

    def steps(key):
        return [m.step for m in client.get_metric_history(run_id, key)]

    # Lightning's step for a training step's values: the number of optimizer steps before it.
    assert steps("train_loss_step") == list(range(EPOCHS * BATCHES))
    assert [m.value for m in client.get_metric_history(run_id, "batch_index")] == [float(i % BATCHES) for i in
                                                                                  range(EPOCHS * BATCHES)]
    for key in ("train_loss_epoch", "val_loss", "train/epoch_seconds"):
        assert steps(key) == list(range(EPOCHS)), key
    # One call an epoch (flushed by EpochStats at its end) with that epoch's 5 x 2 step values, val_loss
    # and 3 epoch stats; Lightning hands over train_loss_epoch after the epoch's last hook, so it goes
    # with the next epoch's call, and the last one at finalize.
    per_epoch = BATCHES * 2 + 1 + 3
    assert calls == [per_epoch] + [per_epoch + 1] * (EPOCHS - 1) + [1]
    assert logger.last["batch_index"] == BATCHES - 1
