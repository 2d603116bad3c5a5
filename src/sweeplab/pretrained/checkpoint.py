"""A Hugging Face checkpoint folder: located (a folder or `package:NAME`), checked for its files, its weights digested."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sweeplab.errors import cause_line
from sweeplab.pretrained import packages
from sweeplab.pretrained.digests import files_sha256

WEIGHTS = ("model.safetensors", "pytorch_model.bin")   # or the sharded forms' index files below
SHARD_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
# Any of these lets transformers build a fast tokenizer (a converted slow one needs vocab.txt, vocab.json+merges.txt
# or a sentencepiece model).
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model")
# Every file that decides how text becomes ids (the token cache's key).
TOKENIZER_SETTINGS = (*TOKENIZER_FILES, "merges.txt", "tokenizer_config.json", "special_tokens_map.json",
                      "added_tokens.json")
HOLDS = "a checkpoint folder holds config.json, model.safetensors (or pytorch_model.bin) and tokenizer files"


@dataclass(frozen=True)
class Checkpoint:
    written: str        # as the config gives it: a folder, or package:NAME
    folder: Path
    weights: list[Path]

    @property
    def weights_sha256(self) -> str:
        return files_sha256(self.weights)

    def tokenizer_files(self) -> list[Path]:
        return [self.folder / name for name in TOKENIZER_SETTINGS if (self.folder / name).is_file()]


def locate(written: str, key: str = "model.checkpoint") -> Checkpoint:
    """The checkpoint `written` names, with every file it needs; ValueError naming what is missing."""
    if not written:
        raise ValueError(f"{key} is not set: give a Hugging Face checkpoint folder ({HOLDS}) "
                         f"or {packages.PREFIX}NAME of an installed checkpoint package")
    if packages.is_package(written):
        folder = packages.package_dir(written)
    else:
        folder = Path(written).expanduser().resolve()
        if not folder.is_dir():
            raise ValueError(f"{key}={written}: no such folder ({HOLDS})")
    if not (folder / "config.json").is_file():
        raise ValueError(f"{key}={written}: config.json is missing ({HOLDS})")
    weights = _weights(folder)
    if not weights:
        raise ValueError(f"{key}={written}: no weights: model.safetensors or pytorch_model.bin is missing ({HOLDS})")
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise ValueError(f"{key}={written}: no tokenizer: one of {', '.join(TOKENIZER_FILES)} is missing ({HOLDS})")
    return Checkpoint(written, folder, weights)


def _weights(folder: Path) -> list[Path]:
    """The weight files: the single file, or every shard its index names."""
    for name in WEIGHTS:
        if (folder / name).is_file():
            return [folder / name]
    for name in SHARD_INDEXES:
        if (folder / name).is_file():
            import json

            shards = sorted(set(json.loads((folder / name).read_text())["weight_map"].values()))
            missing = [s for s in shards if not (folder / s).is_file()]
            if missing:
                raise ValueError(f"model.checkpoint={folder}: {name} names {missing[0]}, which is missing")
            return [folder / s for s in shards]
    return []


def load_tokenizer(checkpoint: Checkpoint, key: str = "model.checkpoint"):
    """The checkpoint's own fast tokenizer, read from disk only (no network)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(checkpoint.folder, local_files_only=True, use_fast=True)
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise ValueError(f"{key}={checkpoint.written}: its tokenizer cannot be read ({cause_line(e)})") from None
    if not tokenizer.is_fast:
        raise ValueError(f"{key}={checkpoint.written}: transformers builds no fast tokenizer from its files; "
                         "add tokenizer.json")
    if tokenizer.pad_token_id is None:
        raise ValueError(f"{key}={checkpoint.written}: its tokenizer has no padding token (tokenizer_config.json "
                         "pad_token); batches of texts of different lengths need one")
    return tokenizer
