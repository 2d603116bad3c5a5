"""sweeplab's cache folder (unpacked checkpoints, tokenized texts): $SWEEPLAB_CACHE, else $XDG_CACHE_HOME/sweeplab."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(kind: str) -> Path:
    """The folder for one kind of cached file, made when missing."""
    root = os.environ.get("SWEEPLAB_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sweeplab"
    folder = Path(root) / kind
    folder.mkdir(parents=True, exist_ok=True)
    return folder
