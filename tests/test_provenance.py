"""What a run records about the code that ran: the git commit and dirty flag of a real checkout."""

from __future__ import annotations

import subprocess

from sweeplab.config import compose_config
from sweeplab.experiment import _provenance
from sweeplab.tracking import provenance


def _git(repo, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                          capture_output=True, text=True, check=True).stdout.strip()


def _tags(repo, monkeypatch) -> tuple[dict, str]:
    """The provenance tags and patch of a run started in `repo` (read afresh: git_state caches)."""
    monkeypatch.chdir(repo)
    provenance.git_state.cache_clear()
    return _provenance(compose_config(["experiment=digits_cnn"]), None)


def test_commit_and_dirty_flag_follow_the_checkout(tmp_path, monkeypatch):
    _git(tmp_path, "init", "-q")
    (tmp_path / "train.py").write_text("print('v1')\n")
    _git(tmp_path, "add", "train.py")
    _git(tmp_path, "commit", "-q", "-m", "v1")
    (tmp_path / "notes.txt").write_text("untracked files do not make a checkout dirty\n")

    tags, patch = _tags(tmp_path, monkeypatch)
    assert tags["mlflow.source.git.commit"] == _git(tmp_path, "rev-parse", "HEAD")
    assert tags["sweeplab.git.dirty"] == "false" and patch == ""

    (tmp_path / "train.py").write_text("print('v2')\n")
    tags, patch = _tags(tmp_path, monkeypatch)
    assert tags["mlflow.source.git.commit"] == _git(tmp_path, "rev-parse", "HEAD")
    assert tags["sweeplab.git.dirty"] == "true"
    assert "-print('v1')" in patch and "+print('v2')" in patch

    _git(tmp_path, "commit", "-q", "-am", "v2")
    tags, patch = _tags(tmp_path, monkeypatch)
    assert tags["mlflow.source.git.commit"] == _git(tmp_path, "rev-parse", "HEAD")
    assert tags["sweeplab.git.dirty"] == "false" and patch == ""
