"""The shared shape of the text data modules: labelled texts -> seeded splits -> padded ids, from a train-only
vocabulary of words, or from a pretrained checkpoint's own tokenizer (`tokenizer`)."""

from __future__ import annotations

import json

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import TensorDataset

from sweeplab import extras
from sweeplab.data.arrays import fingerprint
from sweeplab.data.loaders import SplitDataModule
from sweeplab.data.subword import SubwordTokenizer
from sweeplab.data.tokenizer import PAD_ID, QUOTES, TOKEN_PATTERN, UNK_ID, Vocabulary, tokenize


class TextDataModule(SplitDataModule):
    """Subclasses implement `load_texts()`; this class splits, tokenises and serves (ids, label) batches.

    Ids are right-padded with `pad_id` to `max_len`, a fixed width so that the exported model has one
    input shape; each batch is then cut to its longest text. Models find the padding (and so the
    lengths) as `ids == pad_id`. Without `tokenizer`, ids are words of a vocabulary built from the
    training split only (a word seen only in validation or test texts is unknown) and `pad_id` is 0;
    with `tokenizer` (a Hugging Face checkpoint folder, or package:NAME), ids are that checkpoint's
    word pieces with its special tokens, and `pad_id` is its padding token's.
    """

    def __init__(self, batch_size: int = 64, max_len: int = 64, max_vocab: int = 20000, min_freq: int = 2,
                 labels: list[str] | None = None, num_classes: int | None = None,
                 val_fraction: float = 0.1, test_fraction: float = 0.2, train_size: int | None = None,
                 split_seed: int = 0, num_workers: int = 0,
                 vocab_size: int | None = None, input_size: int | None = None,
                 folds: int | None = None, fold_strategy: str = "stratified", fold: int | None = None,
                 tokenizer: str | None = None):
        # vocab_size (the rows of the model's embedding) and input_size are read by the model's config.
        super().__init__(batch_size, num_workers, folds, fold_strategy, fold)
        if vocab_size is not None and vocab_size < max_vocab:
            raise ValueError(f"data.vocab_size={vocab_size} (the model's embedding rows) must be at least "
                             f"data.max_vocab={max_vocab}")
        if max_len < 1:
            raise ValueError(f"data.max_len={max_len}: must be at least 1")
        if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
            raise ValueError("data.val_fraction and data.test_fraction must be in (0, 1) and sum to less than 1")
        if train_size is not None and train_size < 1:
            raise ValueError(f"data.train_size={train_size}: must be a positive number or null (all)")
        if labels is not None and len(set(map(str, labels))) < 2:
            raise ValueError(f"data.labels={list(labels)}: name at least two labels to keep, or null for all")
        self.max_len = max_len
        self.max_vocab = max_vocab
        self.min_freq = min_freq
        self.labels = [str(label) for label in labels] if labels is not None else None
        self.num_classes = num_classes
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.train_size = train_size
        self.split_seed = split_seed
        self.classes: list[str] = []
        self.vocab: Vocabulary | None = None
        self.subwords = SubwordTokenizer(str(tokenizer), max_len) if tokenizer else None
        self.pad_id = self.subwords.pad_id if self.subwords is not None else PAD_ID
        self._texts: dict[str, list[str]] = {}

    def load_texts(self) -> tuple[list[str], list[str]]:
        """Return (texts, labels), one label per text."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self._splits is not None:
            return
        texts, labels = self.load_texts()
        labels = [str(label) for label in labels]
        if self.labels is not None:
            keep = [i for i, label in enumerate(labels) if label in self.labels]
            texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
        self.classes = self.labels or sorted(set(labels))
        self._check(texts, labels)
        index = {label: i for i, label in enumerate(self.classes)}
        y = np.array([index[label] for label in labels], dtype=np.int64)
        splits = self._split(np.arange(len(texts)), y)   # positions of the texts
        self._texts = {name: [texts[i] for i in at] for name, (at, _) in splits.items()}
        if self.subwords is not None:
            ids = self.subwords.encode(texts)
            arrays = {name: (ids[at], y) for name, (at, y) in splits.items()}
        else:
            tokens = {name: [tokenize(t) for t in self._texts[name]] for name in splits}
            self.vocab = Vocabulary.build(tokens["train"], self.max_vocab, self.min_freq)
            arrays = {name: (self.vocab.encode(tokens[name], self.max_len)[0], y) for name, (_, y) in splits.items()}
        self.fingerprint = fingerprint(arrays)
        self._splits = {name: TensorDataset(torch.from_numpy(ids), torch.from_numpy(y))
                        for name, (ids, y) in arrays.items()}

    def _check(self, texts: list[str], labels: list[str]) -> None:
        counts = {label: labels.count(label) for label in self.classes}
        if len(texts) < 10 or len(counts) < 2 or min(counts.values()) < 3:
            raise ValueError(f"{self.describe()}: needs at least 10 texts and 3 of each of at least two labels; "
                             f"found {len(texts)} texts, labels {counts}")
        if self.num_classes is not None and self.num_classes != len(self.classes):
            raise ValueError(f"data.num_classes={self.num_classes}, but {self.describe()} has "
                             f"{len(self.classes)} labels ({', '.join(self.classes[:10])}); set "
                             f"data.num_classes={len(self.classes)} or list the labels to keep in data.labels")

    def describe(self) -> str:
        """Where the texts come from, for error messages."""
        return type(self).__name__

    def _split(self, x: np.ndarray, y: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Stratified and seeded by `split_seed` (not `seed`), so every trial of a sweep sees the same split."""
        x_rest, x_test, y_rest, y_test = train_test_split(
            x, y, test_size=self.test_fraction, stratify=y, random_state=self.split_seed)
        if self.fold is None:
            x_train, x_val, y_train, y_val = train_test_split(
                x_rest, y_rest, test_size=self.val_fraction / (1 - self.test_fraction),
                stratify=y_rest, random_state=self.split_seed)
        else:   # cross-validation: fold `fold` of what is not test validates, the rest trains
            train, val = self.fold_indices(len(x_rest), y_rest, self.split_seed)
            x_train, x_val, y_train, y_val = x_rest[train], x_rest[val], y_rest[train], y_rest[val]
        if self.train_size is not None:
            if self.train_size > len(x_train):
                raise ValueError(f"data.train_size={self.train_size}: only {len(x_train)} "
                                 "training texts are available")
            x_train, y_train = x_train[: self.train_size], y_train[: self.train_size]
        return {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}

    def decode(self, ids: torch.Tensor) -> list[list[str]]:
        """The tokens of each row of `ids`, padding left out (unknown words show as <unk>, or the tokenizer's [UNK])."""
        if self.subwords is not None:
            return [self.subwords.tokens(row) for row in ids.tolist()]
        return [self.vocab.decode(row) for row in ids.tolist()]

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        # Cut the padding columns that no text of this batch reaches (dynamic padding): attention
        # costs the square of the width, and most texts are far shorter than max_len. Results do not change.
        ids, y = batch
        return ids[:, : int((ids != self.pad_id).sum(1).max())], y

    def raw_texts(self, n: int = 2) -> list[str]:
        """The first `n` validation texts as they were read (the exported model's input example)."""
        self.setup()
        return self._texts["val"][:n]

    def text_preprocessing(self) -> extras.TextPreprocessing | None:
        """What the exported model needs to read raw text: the tokenizer (None: the vocabulary's words, whose
        model takes ids and ships vocab.txt instead; see model_files)."""
        if self.subwords is None:
            return None
        self.setup()
        return extras.TextPreprocessing(save_tokenizer=self.subwords.save, max_len=self.max_len,
                                        pad_id=self.pad_id, classes=list(self.classes))

    def model_files(self) -> dict[str, str]:
        """Files stored with the exported model, so that its users can turn raw text into its input:
        `vocab.txt` (line i is the word with id i) and `text_input.json` (how texts are cut into words).
        None of them with a pretrained tokenizer: its model takes raw text (text_preprocessing)."""
        if self.subwords is not None:
            return {}
        self.setup()
        how = {
            "vocab": "vocab.txt: line i (from 0) is the word with id i",
            "lowercase": True,
            "quotes_read_as_apostrophe": list(QUOTES),
            "token_pattern": TOKEN_PATTERN,
            "pad_id": PAD_ID,
            "unk_id": UNK_ID,
            "max_len": self.max_len,
            "padding": "right, with pad_id, to max_len (or to the longest text of a batch)",
            "empty_text": "one unk_id",
            "classes": self.classes,
        }
        return {"vocab.txt": "".join(f"{word}\n" for word in self.vocab.words),
                "text_input.json": json.dumps(how, indent=2, ensure_ascii=False) + "\n"}
