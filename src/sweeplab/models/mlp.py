"""An MLP backbone: fully connected blocks (linear, batch norm, ReLU, dropout) over a row of features."""

from __future__ import annotations

from torch import nn


class MLP(nn.Module):
    """B x in_features -> B x hidden[-1].

    `in_features` null makes the first layer lazy: its width is taken from the first batch (tabular
    data, whose width after one-hot encoding is known only once the preprocessing is fitted). A lazy
    layer cannot be wrapped by DistributedDataParallel before that batch: give the width for trainer=ddp.
    """

    def __init__(self, in_features: int | None, hidden: list[int], dropout: float = 0.0, batch_norm: bool = False):
        super().__init__()
        if not hidden or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in hidden):
            raise ValueError(f"model.backbone.hidden={list(hidden or [])}: give the width of each hidden layer, "
                             "at least one, e.g. [64, 64]")
        if in_features is not None and in_features < 1:
            raise ValueError(f"model.backbone.in_features={in_features}: must be at least 1, or null (from the data)")
        layers: list[nn.Module] = []
        previous = in_features
        for width in hidden:
            # Batch norm's shift makes the linear layer's bias redundant.
            layers += [nn.Linear(previous, width, bias=not batch_norm) if previous is not None
                       else nn.LazyLinear(width, bias=not batch_norm)]
            layers += [nn.BatchNorm1d(width)] if batch_norm else []
            layers += [nn.ReLU(inplace=True), nn.Dropout(dropout)]
            previous = width
        self.layers = nn.Sequential(*layers)
        self.out_features = previous

    def forward(self, x):
        return self.layers(x)
