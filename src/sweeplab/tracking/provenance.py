"""What a run needs to be reproduced besides its config: git state, versions, command line."""

from __future__ import annotations

import functools
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from sweeplab.secrets import hide_passwords

PACKAGES = ("sweeplab", "torch", "pytorch-lightning", "torchmetrics", "hydra-core", "omegaconf",
            "optuna", "mlflow", "numpy")


def versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


@functools.lru_cache(maxsize=4)
def git_state(where: Path) -> tuple[str | None, bool, str]:
    """(commit, dirty, diff against HEAD) of the git checkout holding `where`; (None, False, "") outside one.

    Read once per process: a sweep worker's trials all run the code it started with."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True,
                              check=True, timeout=10).stdout
    try:
        commit = git("rev-parse", "HEAD").strip()
        status = git("status", "--porcelain", "--untracked-files=no")
        diff = git("diff", "HEAD") if status.strip() else ""
    except (OSError, subprocess.SubprocessError):
        return None, False, ""
    return commit, bool(status.strip()), diff


def command_line() -> str:
    """The command that started this process, with the password of any URL in it hidden."""
    return hide_passwords(shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]))
