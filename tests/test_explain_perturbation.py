"""Lime and KernelShap beside the gradient methods, for every kind of input, on tiny networks: their features
(superpixels, steps, columns, words without the padding), their scale, the written files, and that a seed
gives the same numbers every time."""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from sweeplab.explain.attribute import METHODS, NAMES, attribute
from sweeplab.explain.examples import Examples, TrainingBaselines
from sweeplab.explain.explanation import write_files
from sweeplab.explain.kinds import Kind

NEW = ("lime", "kernel_shap")
PAD = 0


class Words(nn.Module):
    """An LSTM classifier that reads a text up to its last word (its length from the ids), like text_lstm."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(30, 6, padding_idx=PAD)
        self.lstm = nn.LSTM(6, 5, batch_first=True)
        self.head = nn.Linear(5, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.embed(ids))
        last = (ids != PAD).sum(1).clamp(min=1) - 1
        return self.head(out[torch.arange(len(ids)), last])


def _dense_case(kind: Kind):
    """(net, inputs, labels) of a tiny model of that kind of input."""
    torch.manual_seed(1)
    if kind is Kind.IMAGES:   # 28 x 28 RGB: 7 x 7 superpixels of 4 x 4 pixels
        net = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 28 * 28, 4))
        return net.eval(), torch.randn(3, 3, 28, 28), torch.tensor([0, 1, 2])
    if kind is Kind.STEPS:    # a regressor on 12 steps of 2 channels
        net = nn.Sequential(nn.Flatten(), nn.Linear(24, 8), nn.Tanh(), nn.Linear(8, 1))
        return net.eval(), torch.randn(4, 12, 2), torch.randn(4, 1)
    net = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2))   # tabular rows, 5 columns
    return net.eval(), torch.randn(4, 5), torch.tensor([0, 1, 1, 0])


def _explain_dense(kind: Kind, seed: int = 7):
    net, x, y = _dense_case(kind)
    training = TrainingBaselines(x.mean(0, keepdim=True) + 0.1, x[:2])
    return net, x, training, attribute(net, Examples(x, y), training, seed)


def _texts() -> torch.Tensor:
    """Right-padded token ids: texts of 4, 2, 1 and 5 words (one without padding, one empty)."""
    return torch.tensor([[5, 9, 3, 7, 0], [4, 4, 0, 0, 0], [8, 0, 0, 0, 0], [1, 2, 3, 4, 5], [0, 0, 0, 0, 0]])


def _explain_words(ids: torch.Tensor, seed: int = 7):
    torch.manual_seed(2)
    net = Words().eval()
    return net, attribute(net, Examples(ids, torch.zeros(len(ids), dtype=torch.long)), None, seed)


def _target_output(net: nn.Module, x: torch.Tensor, attributions) -> torch.Tensor:
    """The attributed output per example: its target class's logit, or output 0."""
    with torch.no_grad():
        out = net(x)
    target = attributions.target
    return out[torch.arange(len(x)), target] if isinstance(target, torch.Tensor) else out[:, target]


@pytest.mark.parametrize("kind", [Kind.IMAGES, Kind.STEPS, Kind.FEATURES])
def test_dense_kernel_shap_sums_to_the_change_from_the_mean_training_input(kind):
    net, x, training, attributions = _explain_dense(kind)
    assert tuple(attributions.maps) == METHODS
    for method in NEW:
        assert attributions.maps[method].shape == x.shape and torch.isfinite(attributions.maps[method]).all()
        assert attributions.maps[method].abs().sum() > 0, method
        assert "the mean training input" in attributions.baselines[method]
    # KernelShap's weights sum to f(input) - f(baseline) (Captum pins both ends); the maps spread each
    # feature's weight over its elements, so they sum to the same: a weight repeated per element would not.
    change = _target_output(net, x, attributions) - _target_output(net, training.mean.expand_as(x), attributions)
    total = attributions.maps["kernel_shap"].reshape(len(x), -1).sum(1)
    assert total.numpy() == pytest.approx(change.numpy(), rel=1e-3, abs=1e-4)


def test_image_features_are_square_superpixels():
    *_, attributions = _explain_dense(Kind.IMAGES)
    assert "4 x 4 pixel square" in attributions.baselines["lime"] and "49 of them" in attributions.baselines["lime"]
    for method in NEW:
        # N x C x 7 x 4 x 7 x 4: every element of a 4 x 4 patch (all channels) holds the same value
        patches = attributions.maps[method].reshape(3, 3, 7, 4, 7, 4).permute(0, 2, 4, 1, 3, 5).reshape(3, 49, 48)
        assert torch.allclose(patches, patches[..., :1].expand_as(patches)), method
    assert len(torch.unique(patches[..., 0])) > 10   # and KernelShap's patches differ (Lime's Lasso zeroes many)


def test_steps_are_one_feature_each_channels_spread():
    _, _, _, attributions = _explain_dense(Kind.STEPS)
    for method in NEW:
        steps = attributions.maps[method]
        assert torch.equal(steps[..., 0], steps[..., 1]), method   # the two channels share their step's weight


def test_one_column_gets_the_whole_change():
    """A single feature: KernelShap's sampler needs two, its Shapley value is the change of the output."""
    net = nn.Linear(1, 1).eval()
    x, mean = torch.tensor([[2.0], [-1.0]]), torch.tensor([[0.5]])
    attributions = attribute(net, Examples(x, torch.zeros(2, 1)), TrainingBaselines(mean, x), 0)
    want = (net(x) - net(mean)).detach()
    for method in NEW:
        assert attributions.maps[method] == pytest.approx(want, abs=1e-6), method


def test_words_are_the_features_and_padding_is_none():
    ids = _texts()
    net, attributions = _explain_words(ids)
    assert tuple(attributions.maps) == METHODS
    padding = ids == PAD
    for method in NEW:
        words = attributions.maps[method]
        assert words.shape == ids.shape and torch.isfinite(words).all(), method
        assert (words[padding] == 0).all() and (words[~padding] != 0).any(), method
    assert (attributions.maps["kernel_shap"][~padding] != 0).all()   # Lime's Lasso may zero a word, KernelShap not
    # KernelShap's word weights sum to f(text) - f(every word the pad's embedding): one weight per word, not
    # the weight times the embedding's dimension.
    with torch.no_grad():
        handle = net.embed.register_forward_hook(lambda layer, args, output: layer.weight[PAD].expand_as(output))
        try:
            padded = net(ids)[torch.arange(len(ids)), attributions.target]
        finally:
            handle.remove()
    change = _target_output(net, ids, attributions) - padded
    assert attributions.maps["kernel_shap"].sum(1).numpy() == pytest.approx(change.numpy(), rel=1e-3, abs=1e-4)


def test_more_padding_changes_no_word_weight():
    """Padding is no feature: the same text padded further draws the same perturbations, the same weights."""
    short = torch.tensor([[5, 9, 3, 7, 0]])
    long = torch.tensor([[5, 9, 3, 7, 0, 0, 0, 0, 0]])
    _, first = _explain_words(short)
    _, second = _explain_words(long)
    for method in NEW:
        assert torch.allclose(first.maps[method][0, :4], second.maps[method][0, :4], atol=1e-6), method


def _same(first, second) -> None:
    assert first.maps.keys() == second.maps.keys() == set(METHODS)
    for method in METHODS:
        assert torch.equal(first.maps[method], second.maps[method]), method


def test_a_seed_explains_the_same_every_time_and_another_seed_differently():
    ids = _texts()
    _same(_explain_words(ids)[1], _explain_words(ids)[1])
    for kind in (Kind.IMAGES, Kind.STEPS, Kind.FEATURES):
        _same(_explain_dense(kind)[3], _explain_dense(kind)[3])
    other = _explain_dense(Kind.FEATURES, seed=8)[3]
    for method in ("gradient_shap", *NEW):   # the random ones
        assert not torch.equal(other.maps[method], _explain_dense(Kind.FEATURES)[3].maps[method]), method


def test_written_tables_and_pictures_name_every_method(tmp_path):
    data = SimpleNamespace(feature_names=[f"col{i}" for i in range(5)], classes=["a", "b"])
    explained = {"features": _explain_dense(Kind.FEATURES)[::3], "images": _explain_dense(Kind.IMAGES)[::3],
                 "words": _explain_words(_texts())}
    explained["images"][1].maps["lime"][0] = 0   # Lime's Lasso may zero every superpixel: the grid still draws
    for name, (network, attributions) in explained.items():
        folder = tmp_path / name
        folder.mkdir()
        written = {path.name: path for path in write_files(attributions, network, data, folder, "t", "r")}
        document = json.loads(written["mean_abs_attribution.json"].read_text())
        assert list(document["mean_abs_attribution"]) == list(METHODS)
        assert set(document["baselines"]) == set(METHODS)
        for method in NEW:
            values = np.array(document["mean_abs_attribution"][method], dtype=float)
            assert np.isfinite(values).all() and values.max() > 0, (name, method)
        if name == "images":
            assert {f"mean_abs_attribution_{m}.csv" for m in METHODS} <= set(written)
            grid = np.loadtxt(written["mean_abs_attribution_kernel_shap.csv"], delimiter=",")
            assert grid.shape == (28, 28) and np.isfinite(grid).all()
            continue
        rows = list(csv.DictReader(written["mean_abs_attribution.csv"].read_text().splitlines()))
        assert list(rows[0]) == ["feature", *METHODS]
        assert all(np.isfinite(float(row[m])) for row in rows for m in NEW)
        if name == "words":
            page = written["words.html"].read_text()
            for method in METHODS:   # a line per example, and a column of the top words' table
                assert page.count(f"<td>{NAMES[method]}</td>") == len(_texts()) and f"<th>{NAMES[method]}</th>" in page
