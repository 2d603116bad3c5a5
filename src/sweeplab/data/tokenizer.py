"""Word-level tokenisation: a vocabulary built from training texts, padded id arrays with lengths."""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Sequence

import numpy as np

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1          # models find padding as `tokens == 0`

# Words in any script (with an inner apostrophe: "isn't", "film's"), numbers, or single punctuation marks.
TOKEN_PATTERN = r"\w+(?:'\w+)?|[^\w\s]"
_TOKEN = re.compile(TOKEN_PATTERN)
QUOTES = ("\u2019", "\u2018", "`")      # read as an apostrophe
_QUOTES = str.maketrans({quote: "'" for quote in QUOTES})


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower().translate(_QUOTES))


class Vocabulary:
    """Maps words to ids: 0 is padding, 1 any word not kept, then the kept words by frequency."""

    def __init__(self, words: Sequence[str]):
        self.words = [PAD, UNK, *words]
        self.ids = {word: i for i, word in enumerate(self.words)}

    @classmethod
    def build(cls, texts: Iterable[list[str]], max_size: int, min_freq: int = 1) -> "Vocabulary":
        """The most frequent words of `texts` seen at least `min_freq` times; `max_size` counts PAD and UNK."""
        if max_size < 3:
            raise ValueError(f"data.max_vocab={max_size}: must be at least 3 (padding, unknown and one word)")
        if min_freq < 1:
            raise ValueError(f"data.min_freq={min_freq}: must be at least 1")
        counts = Counter(word for tokens in texts for word in tokens)
        # Ties broken alphabetically, so the same texts always give the same ids.
        ranked = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
        return cls(ranked[: max_size - 2])

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, texts: Sequence[list[str]], max_len: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids NxMAX_LEN int64, right-padded with PAD_ID and cut at max_len; lengths N int64, at least 1).

        An empty text becomes one UNK, so every row has a token for the model to read.
        """
        ids = np.full((len(texts), max_len), PAD_ID, dtype=np.int64)
        lengths = np.zeros(len(texts), dtype=np.int64)
        for row, tokens in enumerate(texts):
            kept = [self.ids.get(word, UNK_ID) for word in tokens[:max_len]] or [UNK_ID]
            ids[row, : len(kept)] = kept
            lengths[row] = len(kept)
        return ids, lengths

    def decode(self, ids: Sequence[int]) -> list[str]:
        """The words of one row, padding left out."""
        return [self.words[i] for i in ids if i != PAD_ID]
