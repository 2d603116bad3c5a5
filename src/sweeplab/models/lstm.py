"""An LSTM backbone: token ids (packed by length) or real-valued sequences -> the final hidden state."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

PAD_ID = 0   # the data modules pad token ids with 0 (sweeplab.data.tokenizer.PAD_ID)


class LSTM(nn.Module):
    """Give `vocab_size` for token ids (B x T, int64, right-padded with 0) or `input_size` for
    real-valued sequences (B x T x input_size); the input goes through an embedding or a linear
    projection of `embedding_dim`, then `num_layers` LSTM layers.

    The output is the last layer's final hidden state (both directions when bidirectional): for
    token ids it is taken at each text's own last token, so padding never reaches it.
    """

    def __init__(self, hidden_size: int = 128, num_layers: int = 1, bidirectional: bool = True,
                 dropout: float = 0.0, vocab_size: int | None = None, input_size: int | None = None,
                 embedding_dim: int = 128):
        super().__init__()
        if (vocab_size is None) == (input_size is None):
            raise ValueError("model.backbone: give vocab_size (token ids) or input_size (real-valued "
                             "sequences), not both")
        if num_layers < 1 or hidden_size < 1:
            raise ValueError(f"model.backbone.num_layers={num_layers}, model.backbone.hidden_size={hidden_size}: "
                             "both must be at least 1")
        self.tokens = vocab_size is not None
        self.embed = (nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD_ID) if self.tokens
                      else nn.Linear(input_size, embedding_dim))
        self.dropout = nn.Dropout(dropout)
        # One module per layer (not nn.LSTM(num_layers=...)): the export path needs every
        # layer's full output sequence, see _padded.
        self.layers = nn.ModuleList(
            nn.LSTM(embedding_dim if i == 0 else hidden_size * (2 if bidirectional else 1), hidden_size,
                    batch_first=True, bidirectional=bidirectional)
            for i in range(num_layers))
        self.hidden_size = hidden_size
        self.bidirectional = bidirectional
        self.out_features = hidden_size * (2 if bidirectional else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.tokens:
            return self._dense(self.dropout(self.embed(x)))
        lengths = (x != PAD_ID).sum(1).clamp(min=1)
        h = self.dropout(self.embed(x))
        # torch.export cannot trace packing (its sizes depend on the data), so the exported
        # model takes the padded path, which computes the same numbers (tested).
        if torch.compiler.is_exporting():
            return self._padded(h, lengths)
        return self._packed(h, lengths)

    def _dense(self, h: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            h, (final, _) = layer(self.dropout(h) if i else h)
        return self._join(final[0], final[-1])

    def _packed(self, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Training and evaluation: padding positions are never computed."""
        sequence = pack_padded_sequence(h, lengths.cpu(), batch_first=True, enforce_sorted=False)
        for i, layer in enumerate(self.layers):
            if i:
                sequence = PackedSequence(self.dropout(sequence.data), sequence.batch_sizes,
                                          sequence.sorted_indices, sequence.unsorted_indices)
            sequence, (final, _) = layer(sequence)
        return self._join(final[0], final[-1])

    def _padded(self, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The same result as _packed on the padded tensor, with only shape-static operations.

        The forward direction, run on right-padded rows, is exact up to each row's last token.
        The backward direction is exact when the padding comes first, so each layer also runs on
        the rows shifted to the right (left-padded) and keeps only the backward half of that run.
        """
        size = self.hidden_size
        for i, layer in enumerate(self.layers):
            if i:
                h = self.dropout(h)
            forward_out, _ = layer(h)
            if not self.bidirectional:
                h = forward_out
                continue
            backward_out, _ = layer(_shift(h, lengths, right=True))
            h = torch.cat([forward_out[..., :size], _shift(backward_out, lengths, right=False)[..., size:]], -1)
        last = (lengths - 1).view(-1, 1, 1).expand(-1, 1, h.shape[-1])
        forward_final = h.gather(1, last)[:, 0, :size]
        return self._join(forward_final, h[:, 0, size:]) if self.bidirectional else forward_final

    def _join(self, forward_final: torch.Tensor, backward_final: torch.Tensor) -> torch.Tensor:
        return torch.cat([forward_final, backward_final], -1) if self.bidirectional else forward_final


def _shift(h: torch.Tensor, lengths: torch.Tensor, right: bool) -> torch.Tensor:
    """Rotate each row so its first `length` steps end up last (right=True), or back (right=False)."""
    steps = h.shape[1]
    positions = torch.arange(steps, device=h.device).unsqueeze(0)
    offset = (steps - lengths).unsqueeze(1)
    source = (positions - offset) % steps if right else (positions + offset) % steps
    return h.gather(1, source.unsqueeze(-1).expand(-1, -1, h.shape[-1]))
