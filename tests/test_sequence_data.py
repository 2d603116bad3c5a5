"""Sequence data: tokeniser and vocabulary, the CSV and Rotten Tomatoes modules, MNIST-1D, CO2 windows."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from sweeplab.data.co2 import SEASON, CO2DataModule
from sweeplab.data.mnist1d import MNIST1DDataModule
from sweeplab.data.rotten_tomatoes import RottenTomatoesDataModule
from sweeplab.data.text_csv import CSVTextDataModule
from sweeplab.data.tokenizer import PAD_ID, UNK_ID, Vocabulary, tokenize
from sweeplab.data.windows import fill_gaps, split_ends, target_times, windows


def test_tokenize_words_numbers_punctuation_and_curly_apostrophes():
    assert tokenize("Pete’s film ISN'T bad -- 3 stars!") == ["pete's", "film", "isn't", "bad", "-", "-", "3",
                                                            "stars", "!"]


def test_vocabulary_ids_padding_mask_and_cut():
    vocab = Vocabulary.build([["a", "b", "a"], ["c", "a", "b"]], max_size=4)
    assert vocab.words == ["<pad>", "<unk>", "a", "b"]          # by frequency; max_size counts pad and unk
    assert Vocabulary.build([["a", "b", "a"], ["c"]], max_size=10, min_freq=2).words == ["<pad>", "<unk>", "a"]
    ids, lengths = vocab.encode([["a", "zzz"], [], ["b"] * 10], max_len=4)
    assert ids.tolist() == [[2, UNK_ID, 0, 0], [UNK_ID, 0, 0, 0], [3, 3, 3, 3]]
    assert lengths.tolist() == [2, 1, 4]
    # The padding mask the models use (ids == 0) marks exactly the steps past each text's length.
    assert np.array_equal(ids == PAD_ID, np.arange(4)[None, :] >= lengths[:, None])
    assert vocab.decode(ids[0]) == ["a", "<unk>"]
    with pytest.raises(ValueError, match="data.max_vocab"):
        Vocabulary.build([["a"]], max_size=2)


def _write_reviews(path, n=60):
    """n reviews, each with its own word `onlyN`, half good and half bad."""
    lines = ["review,stars"]
    for i in range(n):
        good = i % 2 == 0
        lines.append(f'"a {"great" if good else "dull"} film, only{i}",{"good" if good else "bad"}')
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_module_builds_its_vocabulary_from_training_texts_only(tmp_path):
    options = dict(path=str(_write_reviews(tmp_path / "reviews.csv")), text_column="review", label_column="stars",
                   min_freq=1, max_len=8, num_classes=2, val_fraction=0.2, test_fraction=0.2, batch_size=4)
    dm = CSVTextDataModule(**options)
    dm.setup()
    assert dm.classes == ["bad", "good"]
    assert {s: len(dm._splits[s]) for s in ("train", "val", "test")} == {"train": 36, "val": 12, "test": 12}
    train_words = {w for row in dm.decode(dm._splits["train"].tensors[0]) for w in row}
    assert set(dm.vocab.words[2:]) == train_words
    for split in ("val", "test"):
        for row in dm.decode(dm._splits[split].tensors[0]):
            assert row[-1] == "<unk>" and row[:-1] == ["a", row[1], "film", ","]   # its own word is unknown
    ids, y = next(iter(dm.train_dataloader()))
    assert ids.dtype == torch.int64 and ids.shape == (4, 8) and y.dtype == torch.int64
    # Batches lose the padding columns that no text of the batch reaches.
    cut, _ = dm.on_after_batch_transfer((ids, y), 0)
    assert cut.shape == (4, 5) and torch.equal(cut, ids[:, :5])
    again = CSVTextDataModule(**options)
    again.setup()
    assert again.fingerprint == dm.fingerprint


def test_csv_module_keeps_only_the_labels_asked_for(tmp_path):
    path = tmp_path / "three.csv"
    path.write_text("text,label\n" + "".join(f"t{i} x,{'abc'[i % 3]}\n" for i in range(45)))
    dm = CSVTextDataModule(path=str(path), labels=["c", "a"], num_classes=2)
    dm.setup()
    assert dm.classes == ["c", "a"] and sum(len(s) for s in dm._splits.values()) == 30
    with pytest.raises(ValueError, match="data.num_classes=2, but .* has 3 labels"):
        CSVTextDataModule(path=str(path), num_classes=2).setup()


@pytest.mark.parametrize("content, kwargs, error, message", [
    (None, {}, FileNotFoundError, "no such file"),
    ("", {}, ValueError, "the file is empty"),
    ("text,label\nfine,1\n", {"label_column": "stars"}, ValueError, "has no column 'stars' .*: text, label"),
    ("text,label\nfine,1\nbad,0\n", {}, ValueError, "needs at least 10 texts"),
])
def test_csv_module_bad_input_says_what_is_wrong(tmp_path, content, kwargs, error, message):
    path = tmp_path / "data.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(error, match=message):
        CSVTextDataModule(path=str(path), **kwargs).setup()


def test_rotten_tomatoes_fresh_vs_rotten_without_plot_rows():
    dm = RottenTomatoesDataModule()
    dm.setup()
    sizes = {s: len(dm._splits[s]) for s in ("train", "val", "test")}
    assert sum(sizes.values()) == 12808 and sizes["test"] == pytest.approx(2562, abs=2)
    assert dm.classes == ["rotten", "fresh"]
    for split in sizes:   # stratified: 7,403 of 12,808 are fresh
        assert dm._splits[split].tensors[1].float().mean().item() == pytest.approx(7403 / 12808, abs=0.005)
    assert dm.example_input(3).shape == (3, 64) and len(dm.vocab) <= 20000
    assert len(dm.fingerprint) == 16


def test_mnist1d_signals_normalised_and_global_rngs_left_alone():
    np.random.seed(7)
    random.seed(7)
    expected = (np.random.rand(), random.random())
    np.random.seed(7)
    random.seed(7)
    dm = MNIST1DDataModule(num_samples=1000, val_size=100)
    dm.setup()
    assert (np.random.rand(), random.random()) == expected     # make_dataset reseeds them; we put them back
    x, y = dm._splits["train"].tensors
    assert x.shape == (700, 40, 1) and dm._splits["test"].tensors[0].shape == (200, 40, 1)
    assert abs(x.mean().item()) < 1e-4 and abs(x.std().item() - 1) < 1e-2
    assert set(y.unique().tolist()) == set(range(10))


def test_windows_never_reach_into_their_targets():
    series = np.arange(100.0)          # each value is its own time index
    x, y = windows(series, 50, 80, window=10, horizon=3)
    assert x.shape == (28, 10) and y.shape == (28, 3)
    assert (x.max(1) < y.min(1)).all() and (x[:, -1] + 1 == y[:, 0]).all()   # inputs end just before the targets
    assert y.min() == 50 and y.max() == 79                                   # targets inside the period
    assert np.array_equal(target_times(50, 80, 10, 3), y)
    x, _ = windows(series, 0, 30, window=10, horizon=3)
    assert x.min() == 0 and x[0, -1] == 9          # the first window needs a full history
    with pytest.raises(ValueError, match="leaves no window"):
        windows(series, 95, 100, window=10, horizon=8)


def test_no_window_sees_a_value_from_its_own_future_even_through_gap_filling():
    rng = np.random.default_rng(0)
    observed = rng.normal(size=60).cumsum()
    observed[[5, 6, 19, 20, 21, 33, 47]] = np.nan           # gaps, some right before a forecast origin
    x, _ = windows(fill_gaps(observed, [60])[0], 0, 60, window=8, horizon=2, observed=observed)
    for row, origin in enumerate(range(8, 59)):
        other = observed.copy()
        other[origin:] += 100.0                              # another future, the same past
        x_other, _ = windows(fill_gaps(other, [60])[0], 0, 60, window=8, horizon=2, observed=other)
        assert np.array_equal(x[row], x_other[row]), origin
    assert not np.isnan(x).any()


def test_gap_filling_looks_at_no_later_value():
    values = np.array([1.0, np.nan, 3.0, 4.0, np.nan, np.nan, 10.0, np.nan, 12.0])
    train, full = fill_gaps(values, [6, len(values)])
    assert train.tolist() == [1, 2, 3, 4, 4, 4]                 # the gap at the end of training is held, not
    assert full.tolist() == [1, 2, 3, 4, 6, 8, 10, 11, 12]       # interpolated towards a later value
    changed = values.copy()
    changed[6:] = [99.0, 98.0, np.nan]
    assert fill_gaps(changed, [6])[0].tolist() == train.tolist()
    assert split_ends(100, 0.15, 0.15) == (70, 85)


class _CO2WithOtherTestYears(CO2DataModule):
    """The same series with the test period's values changed and a gap added at its start."""

    def load_series(self):
        series = super().load_series().copy()
        test_start = split_ends(len(series), self.val_fraction, self.test_fraction)[1]
        series.iloc[test_start:] += 50.0
        series.iloc[test_start: test_start + 3] = np.nan
        return series


def test_co2_scaling_and_filling_see_no_test_value():
    plain, other = CO2DataModule(window=26, horizon=4), _CO2WithOtherTestYears(window=26, horizon=4)
    plain.setup()
    other.setup()
    assert (plain.mean, plain.std) == (other.mean, other.std)
    for split in ("train", "val"):
        for a, b in zip(plain._splits[split].tensors, other._splits[split].tensors):
            assert torch.equal(a, b), split
    assert not torch.equal(plain._splits["test"].tensors[1], other._splits["test"].tensors[1])
    assert not np.isnan(plain.test_actual).any()    # the 59 gaps are filled


@pytest.mark.parametrize("relative", [True, False])
def test_co2_seasonal_naive_reference_is_on_the_test_targets(relative):
    dm = CO2DataModule(window=26, horizon=4, relative=relative)
    dm.setup()
    x, y = dm._splits["test"].tensors
    assert x.shape == (len(y), 26, 1) and y.shape[1] == 4
    scaled = (dm.test_actual - dm.mean) / dm.std
    naive = scaled[dm.test_times - SEASON] - (dm.test_last[:, None] if relative else 0)
    assert np.allclose(y.numpy(), scaled[dm.test_times] - (dm.test_last[:, None] if relative else 0), atol=1e-6)
    expected = np.sqrt(np.mean((naive - y.numpy().astype(np.float64)) ** 2))
    assert dm.reference_metrics()["test/seasonal_naive_rmse"] == pytest.approx(expected, rel=1e-5)
    # In ppm the reference is about 1.9: CO2 rises ~1.5 ppm a year.
    assert dm.reference["test/seasonal_naive_rmse"] * dm.std == pytest.approx(1.9, abs=0.2)
