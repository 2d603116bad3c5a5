"""Sequence backbones (LSTM, Transformer, 1-D CNN), the Regressor, and the figures they offer."""

from __future__ import annotations

import pytest
import torch
from matplotlib.figure import Figure

from sweeplab.models.classifier import Classifier
from sweeplab.models.cnn1d import CNN1d
from sweeplab.models.lstm import LSTM
from sweeplab.models.regressor import Regressor
from sweeplab.models.transformer import Transformer


def _ids(rows: int = 4, width: int = 12, seed: int = 0) -> torch.Tensor:
    """Right-padded token ids of different lengths (one full row, one of a single token)."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, 50, (rows, width), generator=generator)
    for row, length in enumerate([5, width, 1, 8][:rows]):
        ids[row, length:] = 0
    return ids


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_lstm_export_path_computes_what_packing_computes(bidirectional, num_layers):
    torch.manual_seed(0)
    net = LSTM(hidden_size=8, num_layers=num_layers, bidirectional=bidirectional, vocab_size=50,
               embedding_dim=6).eval()
    ids = _ids()
    with torch.no_grad():
        packed = net(ids)
        padded = net._padded(net.embed(ids), (ids != 0).sum(1))
    assert packed.shape == (4, net.out_features) == (4, 8 * (2 if bidirectional else 1))
    assert torch.allclose(packed, padded, atol=1e-6)


def test_lstm_and_transformer_never_read_padding():
    torch.manual_seed(0)
    ids = _ids()
    wider = torch.cat([ids, torch.zeros(4, 5, dtype=ids.dtype)], 1)
    for net in (LSTM(hidden_size=8, vocab_size=50, embedding_dim=6),
                Transformer(d_model=16, nhead=2, dim_feedforward=16, vocab_size=50, pooling="mean"),
                Transformer(d_model=16, nhead=2, dim_feedforward=16, vocab_size=50, pooling="cls")):
        net.eval()
        with torch.no_grad():
            assert torch.allclose(net(ids), net(wider), atol=1e-5), type(net).__name__


def test_real_valued_sequences_go_through_every_backbone():
    x = torch.randn(3, 40, 1)
    for net in (LSTM(hidden_size=8, input_size=1, embedding_dim=4, num_layers=2),
                Transformer(d_model=16, nhead=2, input_size=1, input_kernel=5),
                CNN1d(in_channels=1, channels=[4, 8], pooled_size=4)):
        assert net(x).shape == (3, net.out_features), type(net).__name__
    assert CNN1d(1, [4, 8], pooled_size=4).out_features == 32


def test_transformer_attention_covers_only_real_tokens():
    net = Transformer(d_model=16, nhead=2, dim_feedforward=16, vocab_size=50).eval()
    ids = _ids()
    with torch.no_grad():
        weights, padding = net.attention(ids)
    assert weights.shape == (4, 12, 12)
    assert torch.allclose(weights.sum(-1), torch.ones(4, 12), atol=1e-5)
    assert (weights[padding.unsqueeze(1).expand_as(weights)] == 0).all()


@pytest.mark.parametrize("kwargs, message", [
    ({"vocab_size": 10, "input_size": 1}, "not both"),
    ({"vocab_size": 10, "pooling": "max"}, "model.backbone.pooling='max'"),
    ({"vocab_size": 10, "d_model": 30, "nhead": 4}, "multiple of model.backbone.nhead"),
])
def test_transformer_options_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Transformer(**kwargs)


def test_regressor_metrics_pool_every_output():
    model = Regressor(LSTM(hidden_size=4, input_size=1, embedding_dim=4, bidirectional=False), outputs=3)
    predictions = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    targets = torch.tensor([[1.0, 2.0, 5.0], [0.0, 1.0, 0.0]])
    model.test_metrics.update(predictions[:1], targets[:1])
    model.test_metrics.update(predictions[1:], targets[1:])
    result = {k: v.item() for k, v in model.test_metrics.compute().items()}
    assert result == pytest.approx({"test/mse": 5 / 6, "test/rmse": (5 / 6) ** 0.5, "test/mae": 3 / 6})
    assert model(torch.randn(2, 7, 1)).shape == (2, 3)


class _Texts:
    """The two things SupervisedModule.figures asks of a data module."""

    def example_input(self, n):
        return _ids(n)

    def decode(self, ids):
        return [[f"w{i}" for i in range(int((row != 0).sum()))] for row in ids]


def test_a_transformer_classifier_draws_attention_and_an_lstm_draws_nothing():
    transformer = Classifier(Transformer(d_model=16, nhead=2, dim_feedforward=16, vocab_size=50), num_classes=2)
    figures = transformer.figures(_Texts())
    assert list(figures) == ["attention"] and isinstance(figures["attention"], Figure)
    assert sum(len(axes.images) for axes in figures["attention"].axes) == 4     # one heatmap per example
    assert transformer.training    # put back in training mode
    assert Classifier(LSTM(hidden_size=4, vocab_size=50, embedding_dim=4), num_classes=2).figures(_Texts()) == {}
