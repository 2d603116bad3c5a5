"""A Transformer encoder backbone: embedding + positional encoding, masked self-attention, mean or CLS pooling."""

from __future__ import annotations

import math

import torch
from torch import nn

from sweeplab.models.attention_plot import attention_figure

PAD_ID = 0   # the data modules pad token ids with 0 (sweeplab.data.tokenizer.PAD_ID)
POOLINGS = ("mean", "cls")


class Transformer(nn.Module):
    """Give `vocab_size` for token ids (B x T, int64, right-padded with 0) or `input_size` for
    real-valued sequences (B x T x input_size).

    Padding is masked out of attention and of the mean; `cls` pooling prepends a learned
    vector and returns its final state instead. Pre-norm layers: they train without warm-up.
    """

    def __init__(self, d_model: int = 64, nhead: int = 4, num_layers: int = 2, dim_feedforward: int = 128,
                 dropout: float = 0.1, pooling: str = "mean", vocab_size: int | None = None,
                 input_size: int | None = None, input_kernel: int = 1, max_len: int = 1024):
        super().__init__()
        if (vocab_size is None) == (input_size is None):
            raise ValueError("model.backbone: give vocab_size (token ids) or input_size (real-valued "
                             "sequences), not both")
        if pooling not in POOLINGS:
            raise ValueError(f"model.backbone.pooling={pooling!r}: must be one of {', '.join(POOLINGS)}")
        if d_model % nhead:
            raise ValueError(f"model.backbone.d_model={d_model} must be a multiple of model.backbone.nhead={nhead}")
        if num_layers < 1:
            raise ValueError(f"model.backbone.num_layers={num_layers}: must be at least 1")
        if input_kernel < 1 or input_kernel % 2 == 0:
            raise ValueError(f"model.backbone.input_kernel={input_kernel}: must be odd (same padding)")
        self.tokens = vocab_size is not None
        self.embed = (nn.Embedding(vocab_size, d_model, padding_idx=PAD_ID) if self.tokens
                      else _StepProjection(input_size, d_model, input_kernel))
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model)) if pooling == "cls" else None
        self.register_buffer("positions", _sinusoids(max_len + 1, d_model), persistent=False)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, batch_first=True, norm_first=True)
            for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)
        self.scale = math.sqrt(d_model)
        self.out_features = d_model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, padding = self._embed(x)
        for layer in self.layers:
            h = layer(h, src_key_padding_mask=padding)
        h = self.norm(h)
        if self.cls is not None:
            return h[:, 0]
        keep = (~padding).unsqueeze(-1).to(h.dtype)
        return (h * keep).sum(1) / keep.sum(1)

    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B x T' x d_model inputs of the first layer, B x T' padding mask); T' = T + 1 with CLS."""
        if self.tokens:
            padding = x == PAD_ID
            h = self.embed(x) * self.scale
        else:
            padding = torch.zeros(x.shape[:2], dtype=torch.bool, device=x.device)
            h = self.embed(x)
        if self.cls is not None:
            h = torch.cat([self.cls.expand(h.shape[0], -1, -1), h], 1)
            padding = torch.cat([padding[:, :1] & False, padding], 1)
        if h.shape[1] > len(self.positions):
            raise ValueError(f"sequences of {h.shape[1]} steps are longer than model.backbone.max_len")
        return self.dropout(h + self.positions[: h.shape[1]]), padding

    def attention(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The last layer's attention weights, averaged over heads (B x T' x T'), and the padding mask."""
        h, padding = self._embed(x)
        for layer in self.layers[:-1]:
            h = layer(h, src_key_padding_mask=padding)
        last = self.layers[-1]
        q = last.norm1(h)   # pre-norm: attention reads the normalised input
        _, weights = last.self_attn(q, q, q, key_padding_mask=padding, need_weights=True,
                                    average_attn_weights=True)
        return weights, padding

    def figures(self, x: torch.Tensor, words: list[list[str]] | None = None) -> dict:
        """{"attention": heatmaps of the last layer's attention over each example's own steps}."""
        weights, padding = self.attention(x)
        maps, labels = [], []
        for row in range(len(x)):
            keep = (~padding[row]).nonzero().flatten().cpu()
            steps = words[row] if words is not None else [str(t) for t in range(len(keep) - (self.cls is not None))]
            labels.append((["[CLS]"] if self.cls is not None else []) + list(steps))
            maps.append(weights[row][keep][:, keep].detach().cpu().numpy())
        return {"attention": attention_figure(maps, labels)}


class _StepProjection(nn.Module):
    """Real-valued steps B x T x C to B x T x d_model: a linear map of each step (kernel 1), or of
    each step with its neighbours (a same-padded convolution), which a single scalar per step needs."""

    def __init__(self, channels: int, width: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, width, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.transpose(1, 2)).transpose(1, 2)


def _sinusoids(length: int, width: int) -> torch.Tensor:
    """The fixed sine/cosine positional encoding of "Attention is all you need"."""
    position = torch.arange(length).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, width, 2) * (-math.log(10000.0) / width))
    table = torch.zeros(length, width)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: width // 2])
    return table
