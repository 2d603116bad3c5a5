"""The fixed inputs of an explanation: the first N test examples, and baselines drawn from the training split."""

from __future__ import annotations

from dataclasses import dataclass

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.model_helpers import is_overridden

from sweeplab.explain.protocols import NotExplainable

BACKGROUND = 32   # training inputs GradientShap draws its baselines from


@dataclass
class Examples:
    inputs: torch.Tensor     # N x ...: the first N inputs of the test split, in its order
    labels: torch.Tensor     # N x ...: their targets


@dataclass
class TrainingBaselines:
    mean: torch.Tensor         # 1 x ...: the mean training input (Integrated Gradients' baseline)
    background: torch.Tensor   # K x ...: the first K training inputs served after seeding (GradientShap's)


def test_examples(datamodule: pl.LightningDataModule, n: int) -> Examples:
    """The first `n` examples of the test split (fewer when it has fewer); the test loader serves them
    in order, so every explanation of a run looks at the same ones."""
    if not is_overridden("test_dataloader", datamodule):
        raise NotExplainable(f"{type(datamodule).__qualname__} has no test_dataloader: explanations are "
                             "of the first test examples")
    inputs, labels, count = [], [], 0
    for batch in datamodule.test_dataloader():
        x, y = _split(batch, datamodule)
        inputs.append(x.detach().cpu())
        labels.append(y.detach().cpu())
        count += len(x)
        if count >= n:
            break
    if not count:
        raise NotExplainable(f"the test split of {type(datamodule).__qualname__} is empty")
    return Examples(torch.cat(inputs)[:n], torch.cat(labels)[:n])


def training_baselines(datamodule: pl.LightningDataModule, seed: int,
                       background: int = BACKGROUND) -> TrainingBaselines:
    """The mean of every training input (a pass over the train loader, summed in float64 so the order the
    loader shuffles them in does not matter), and its first `background` inputs after seeding torch with
    `seed` (the shuffle draws from torch's global generator): the same ones every time."""
    torch.manual_seed(seed)
    total, count, first = None, 0, []
    for batch in datamodule.train_dataloader():
        x, _ = _split(batch, datamodule)
        x = x.detach().cpu()
        total = x.double().sum(0) if total is None else total + x.double().sum(0)
        count += len(x)
        if sum(map(len, first)) < background:
            first.append(x)
    if not count:
        raise NotExplainable(f"the training split of {type(datamodule).__qualname__} is empty")
    return TrainingBaselines((total / count).float().unsqueeze(0), torch.cat(first)[:background])


def _split(batch, datamodule) -> tuple[torch.Tensor, torch.Tensor]:
    if (not isinstance(batch, (list, tuple)) or len(batch) < 2 or not isinstance(batch[0], torch.Tensor)
            or not isinstance(batch[1], torch.Tensor)):
        raise NotExplainable(f"batches of {type(datamodule).__qualname__} are not (inputs, targets) tensors; "
                             "explanations need a tensor of inputs that the model's forward takes")
    return batch[0], batch[1]
