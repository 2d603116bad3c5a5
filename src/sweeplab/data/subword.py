"""Texts to ids with a pretrained checkpoint's own fast tokenizer, cached on disk by tokenizer files, texts and length."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from sweeplab.pretrained.cache import cache_dir
from sweeplab.pretrained.checkpoint import Checkpoint, load_tokenizer, locate
from sweeplab.pretrained.digests import file_sha256

_IN_MEMORY: dict[str, np.ndarray] = {}   # a worker's trials tokenize each corpus once


class SubwordTokenizer:
    """The checkpoint's tokenizer with truncation at `max_len`: ids right-padded with its pad id to `max_len`
    (the loader then cuts each batch to its longest text), special tokens ([CLS], [SEP], ...) included."""

    def __init__(self, written: str, max_len: int):
        self.checkpoint: Checkpoint = locate(written, "data.tokenizer")
        self.tokenizer = load_tokenizer(self.checkpoint, "data.tokenizer")
        if max_len > self.tokenizer.model_max_length:
            raise ValueError(f"data.max_len={max_len}: the tokenizer of {written} reads at most "
                             f"{self.tokenizer.model_max_length} tokens")
        self.max_len = max_len
        self.pad_id = int(self.tokenizer.pad_token_id)

    def encode(self, texts: list[str]) -> np.ndarray:
        """N x max_len int64 ids; the same texts, tokenizer files and length are read back from the cache."""
        key = self._key(texts)
        if key in _IN_MEMORY:
            return _IN_MEMORY[key]
        path = cache_dir("tokens") / f"{key}.npy"
        if path.is_file():
            ids = np.load(path, allow_pickle=False)
        else:
            ids = np.asarray(self.tokenizer(texts, truncation=True, max_length=self.max_len, padding="max_length",
                                            return_attention_mask=False)["input_ids"], dtype=np.int64)
            _write(path, ids)
        _IN_MEMORY[key] = ids
        return ids

    def _key(self, texts: list[str]) -> str:
        digest = hashlib.sha256()
        for file in self.checkpoint.tokenizer_files():
            digest.update(f"{file.name} {file_sha256(file)}\n".encode())
        digest.update(f"max_len {self.max_len}\n".encode())
        digest.update(json.dumps(texts, ensure_ascii=False).encode())
        return digest.hexdigest()[:32]

    def tokens(self, ids: list[int]) -> list[str]:
        """The tokens of one row of ids, padding left out (word pieces as the tokenizer writes them, e.g. ##ing)."""
        return self.tokenizer.convert_ids_to_tokens([i for i in ids if i != self.pad_id])

    def save(self, folder: Path) -> None:
        """The tokenizer's files, as transformers' AutoTokenizer.from_pretrained reads them back."""
        self.tokenizer.save_pretrained(str(folder))


def _write(path: Path, ids: np.ndarray) -> None:
    """Whole or not at all: workers starting together may write the same file."""
    handle, partial = tempfile.mkstemp(dir=path.parent, suffix=".npy")
    try:
        with os.fdopen(handle, "wb") as f:
            np.save(f, ids, allow_pickle=False)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
