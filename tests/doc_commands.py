"""The shell commands of README.md and docs/*.md, read from their ```bash blocks, and how the tests run each."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# Commands not run here, by how they start, and why. Each must still occur in a doc (a stale entry fails).
SKIPPED = {
    "source .venv/bin/activate": "the tests run in that virtual environment already",
    "cd /some/empty/dir": "each doc's commands run in a fresh empty folder",
    "sweeplab ui": "a server that runs until stopped",
    "sweeplab dashboard": "a server that runs until stopped",
    "mlflow models serve": "a server that runs until stopped",
}
# What a full run gets appended (replacing the same keys): a few batches, two trials, one worker.
SMALL = {"train": ["trainer=smoke"], "sweep": ["trainer=smoke", "sweep.n_trials=2", "sweep.workers=1"],
         "explain": ["--examples", "2"]}
# What `make services` exports on the services host, here pointed at a local file.
EXPORTED = {"SWEEPLAB_STORAGE": "sqlite:///optuna.db"}
# Placeholders, and the command whose output gives each (the run id it prints).
PLACEHOLDERS = {"<RUN_ID>": "train", "<SWEEP_RUN_ID>": "sweep"}
# A composed command's placeholder before any run printed one: the config only needs a string there.
UNRUN_ID = "0" * 32
READERS = ("compare", "report")   # name a sweep's study: they need the sweep before them to have run


@dataclass
class Command:
    doc: str
    line: int
    text: str
    env: dict = field(default_factory=dict)
    words: list = field(default_factory=list)
    mode: str = ""     # run, compose (--print-config), dry-run (make -n) or skip
    why: str = ""      # the reason of a skip

    @property
    def sub(self) -> str:
        """`train`, `sweep`, ... for a `sweeplab` command, else the program."""
        return self.words[1] if self.words[0] == "sweeplab" and len(self.words) > 1 else self.words[0]


def commands(doc: Path) -> list[Command]:
    """Every command line of the doc's ```bash blocks (continuations joined, comments and output dropped)."""
    found, fenced, pending, start = [], None, "", 0
    for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            fenced = None if fenced is not None else line[3:].strip()
            continue
        if fenced != "bash" or (not pending and (not line.strip() or line.lstrip().startswith("#"))):
            continue
        start = start if pending else number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        text, pending = (pending + line).strip(), ""
        words = [re.sub(r"\$(\w+)", lambda m: EXPORTED.get(m.group(1), m.group(0)), word)
                 for word in shlex.split(text, comments=True)]
        env = {}
        while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
            key, _, value = words.pop(0).partition("=")
            env[key] = value
        found.append(Command(str(doc.relative_to(ROOT)), start, text.split(" #")[0].strip(), env, words))
    return found


def plan(doc: Path) -> list[Command]:
    """The doc's commands with their modes. A `train` or `sweep` runs in full only when a command after it
    that runs needs what it makes (its run id, its study); otherwise `--print-config` composes it, which
    checks every group, key and value it names at a fraction of a run's cost."""
    found = commands(doc)
    for command in found:
        command.mode = _mode(command)
    needed = set()   # `train` / `sweep`: a later running command needs one
    for command in reversed(found):
        if command.sub in ("train", "sweep") and command.sub in needed and "--print-config" not in command.words:
            command.mode = "run"
            needed.discard(command.sub)
        if command.mode == "run":
            needed |= {kind for holder, kind in PLACEHOLDERS.items() if holder in command.text}
            needed |= {"sweep"} if command.sub in READERS else set()
    return found


def _mode(command: Command) -> str:
    for start, why in SKIPPED.items():
        if command.text.startswith(start):
            command.why = why
            return "skip"
    if command.words[0] == "make":
        return "dry-run"
    if command.sub in ("train", "sweep", "worker"):
        return "compose"
    if command.words[0] in ("sweeplab", "python"):
        return "run"
    raise AssertionError(f"{command.doc}:{command.line}: no way to test `{command.text}`: "
                         "teach tests/doc_commands.py, or add it to SKIPPED with the reason")


def with_small(command: Command) -> list[str]:
    """The command's words as the tests run it: small overrides for a full run, --print-config to compose."""
    words = list(command.words)
    if command.mode == "compose" and "--print-config" not in words:
        return [*words, "--print-config"]
    if command.mode != "run":
        return words
    extra = SMALL.get(command.sub, [])
    keys = {word.partition("=")[0] + "=" for word in extra if "=" in word}
    return [word for word in words if not word.startswith(tuple(keys))] + extra


def files(doc: Path) -> dict[str, str]:
    """The doc's example files: {path: text} of each code block captioned "`PATH`:" on the line above it."""
    found, caption, block = {}, None, None
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            if block is not None and caption:
                found[caption] = "\n".join(block) + "\n"
                caption = None   # a caption names the one block right below it
            block = [] if block is None else None
            continue
        if block is not None:
            block.append(line)
        elif line.strip():
            named = re.fullmatch(r"`([^`]+)`:", line.strip())
            caption = named.group(1) if named else None
    return found
