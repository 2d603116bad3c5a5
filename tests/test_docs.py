"""README.md and docs/: a short front page, links that resolve, and every shell command run (tests/doc_commands.py
says how each is run: in full with small overrides, composed with --print-config, `make -n`, or skipped)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from doc_commands import DOCS, PLACEHOLDERS, ROOT, SKIPPED, UNRUN_ID, commands, files, plan, with_small

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _prose(doc: Path) -> list[str]:
    """The doc's lines outside code blocks, inline code removed (a link there is an example, not a link)."""
    lines, fenced = [], False
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(re.sub(r"`[^`]*`", "", line))
    return lines


def _anchors(doc: Path) -> set[str]:
    """GitHub's ids for the doc's headings: lower case, punctuation dropped, spaces to hyphens, -1 on a repeat."""
    seen, anchors = {}, set()
    for line in _prose(doc):
        if re.match(r"#{1,6} ", line):
            slug = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
            anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
            seen[slug] = seen.get(slug, 0) + 1
    return anchors


def test_the_readme_is_a_front_page():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 200


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: doc.name)
def test_every_relative_link_resolves(doc):
    broken = []
    for line in _prose(doc):
        for target in LINK.findall(line):
            if re.match(r"[a-z]+:", target):
                continue   # http(s), mailto: not checked offline
            path, _, anchor = target.partition("#")
            linked = (doc.parent / path).resolve() if path else doc
            if not linked.exists() or (anchor and anchor not in _anchors(linked)):
                broken.append(target)
    assert not broken, f"{doc.name}: {broken}"


def test_every_benchmark_script_exists():
    named = set(re.findall(r"(bench/[\w/]+\.(?:py|sh))", (ROOT / "docs" / "benchmarks.md").read_text()))
    assert named and not [path for path in named if not (ROOT / path).exists()], named


def test_every_skip_names_a_command_of_the_docs():
    texts = [command.text for doc in DOCS for command in commands(doc)]
    assert not [start for start in SKIPPED if not any(text.startswith(start) for text in texts)]


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> dict:
    """Every doc's commands, in order, each doc in a fresh folder of its own (with the doc's example files and
    the checkout's tests/, which some commands name), all in one process: {doc: [result, ...]}."""
    groups = []
    for doc in DOCS:
        folder = tmp_path_factory.mktemp(doc.stem)
        (folder / "tests").symlink_to(ROOT / "tests")
        for name, text in files(doc).items():   # the doc's own example files, as a reader would save them
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text, encoding="utf-8")
        planned = [{"doc": c.doc, "line": c.line, "text": c.text, "mode": c.mode, "why": c.why, "env": c.env,
                    "words": with_small(c), "placeholders": {holder: UNRUN_ID for holder in PLACEHOLDERS},
                    "gives": {h: kind for h, kind in PLACEHOLDERS.items() if c.mode == "run" and c.sub == kind}}
                   for c in plan(doc) if c.mode != "skip"]
        groups.append({"dir": str(folder), "root": str(ROOT), "commands": planned})
    work = tmp_path_factory.mktemp("plan")
    (work / "plan.json").write_text(json.dumps(groups))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "doc_runner.py"), str(work / "plan.json"),
                           str(work / "results.json")], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = {}
    for result in json.loads((work / "results.json").read_text()):
        results.setdefault(result["doc"], []).append(result)
    return results


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: doc.name)
def test_every_command_of_the_doc_runs(doc, ran):
    planned = plan(doc)
    results = ran.get(str(doc.relative_to(ROOT)), [])
    assert len(results) == len([c for c in planned if c.mode != "skip"])
    failed = [f"{r['doc']}:{r['line']} ({r['mode']}) {' '.join(r['ran'])}\n{r['output']}"
              for r in results if r["rc"] != 0]
    assert not failed, "\n\n".join(failed)
