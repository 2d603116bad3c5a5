"""The "Your own experiment" example of docs/own-code.md (linked from the README), run exactly as written: its
files and its command."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from conftest import run_cli, runs_in

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "own-code.md"
HEADING = re.compile(r"#{1,3} ")


def _section(title: str) -> list[str]:
    """The lines of the guide's section under `## title`, up to the next heading outside a code block."""
    lines, inside, fenced = [], False, False
    for line in GUIDE.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and HEADING.match(line):
            if inside:
                break
            inside = line == f"## {title}"
            continue
        if inside:
            lines.append(line)
    assert lines, f"{GUIDE.name} has no section '## {title}'"
    return lines


def _blocks(lines: list[str]) -> list[tuple[str | None, str, str]]:
    """(file name, language, text) of each code block; the name is a "`PATH`:" line just above it."""
    blocks, start, above = [], None, None
    for number, line in enumerate(lines):
        if line.startswith("```") and start is None:
            start = number
            caption = [text for text in lines[:number] if text.strip()][-1:]
            found = re.fullmatch(r"`([^`]+)`:", caption[0]) if caption else None
            above = found.group(1) if found else None
            language = line[3:].strip()
        elif line.startswith("```"):
            blocks.append((above, language, "\n".join(lines[start + 1: number]) + "\n"))
            start = None
    return blocks


def test_your_own_experiment_runs_as_written(tmp_path):
    blocks = _blocks(_section("Your own experiment"))
    files = {name: text for name, _, text in blocks if name}
    commands = [text for name, language, text in blocks if not name and language == "bash"]
    assert len(files) >= 2 and len(commands) == 1, blocks
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    words = shlex.split(commands[0].replace("\\\n", " "))
    env = {}
    while "=" in words[0] and not words[0].startswith("-"):   # VAR=value before the command
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    assert words[0] == "sweeplab", words

    done = run_cli(*words[1:], cwd=tmp_path, env=env)

    assert done.returncode == 0, done.stderr[-3000:]
    (experiment,) = [word.partition("=")[2] for word in words if word.startswith("experiment=")]
    (config,) = [text for name, text in files.items() if name.endswith(f"experiment/{experiment}.yaml")]
    (run,) = runs_in(tmp_path, yaml.safe_load(config)["name"])
    assert run.info.status == "FINISHED" and f"MLflow run {run.info.run_id} (FINISHED)" in done.stdout
    (model,) = [yaml.safe_load(text) for name, text in files.items() if "/model/" in name]
    assert run.data.params["model.backbone._target_"] == model["backbone"]["_target_"]
    assert run.data.metrics["test/acc"] > 0.5   # it learned the digits
