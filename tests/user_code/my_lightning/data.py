"""A plain LightningDataModule: scikit-learn's 8x8 digits, flattened, in plain DataLoaders."""

import numpy as np
import pytorch_lightning as pl
import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset


class DigitsData(pl.LightningDataModule):
    def __init__(self, batch_size: int = 64, val_size: int = 300, test_size: int = 300):
        super().__init__()
        self.batch_size = batch_size
        self.val_size = val_size
        self.test_size = test_size

    def setup(self, stage=None):
        x, y = load_digits(return_X_y=True)
        order = np.random.RandomState(0).permutation(len(y))
        x = torch.tensor(x[order] / 16.0, dtype=torch.float32)
        y = torch.tensor(y[order], dtype=torch.long)
        v, t = self.val_size, self.val_size + self.test_size
        self.val, self.test, self.train = (TensorDataset(x[:v], y[:v]), TensorDataset(x[v:t], y[v:t]),
                                           TensorDataset(x[t:], y[t:]))

    def train_dataloader(self):
        return DataLoader(self.train, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val, batch_size=self.batch_size)

    def test_dataloader(self):
        return DataLoader(self.test, batch_size=self.batch_size)
