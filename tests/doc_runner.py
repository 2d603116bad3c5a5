"""Runs the docs' commands planned by tests/test_docs.py, each `sweeplab` and `python -c` one forked from one server.

`python tests/doc_runner.py PLAN.json RESULTS.json`. A `sweeplab` command runs `sweeplab.cli.main`, the
function the installed `sweeplab` script calls, and a `python -c` command its code as `__main__`, each in a
process forked from a fork server (sweeplab.forks) that imported torch, Lightning and MLflow once, instead
of importing them once a command; a sweep's workers are forked from it too. `python -m` and `make`
commands run as processes of their own.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

from sweeplab.forks import client as forks
from sweeplab.sweep.driver import WORKER_ENTRY, WORKER_MODULES

HERE = str(Path(__file__).resolve().parent)

PRINTED = {"train": re.compile(r"MLflow run ([0-9a-f]{32})"), "sweep": re.compile(r"parent run ([0-9a-f]{32})")}


def main(plan_file: str, results_file: str) -> int:
    groups = json.load(open(plan_file, encoding="utf-8"))
    results = []
    for group in groups:
        printed = {}   # placeholder -> the run id that the latest full run of its kind printed
        for command in group["commands"]:
            started = time.monotonic()
            words = [_filled(word, printed, command) for word in command["words"]]
            missing = [holder for holder in command["placeholders"] if any(holder in word for word in words)]
            if missing:
                rc, output = 1, f"no earlier command printed {missing[0]}"
            else:
                rc, output = _run(words, command, group)
            for holder, kind in command["gives"].items():
                found = PRINTED[kind].findall(output)
                if found:
                    printed[holder] = found[-1]
            results.append({**command, "ran": words, "rc": rc, "output": output[-4000:],
                            "seconds": round(time.monotonic() - started, 1)})
            print(f"{rc:>3} {results[-1]['seconds']:>6}s {command['doc']}:{command['line']} {' '.join(words)}",
                  flush=True)
    json.dump(results, open(results_file, "w", encoding="utf-8"), indent=1)
    return 0


def _filled(word: str, printed: dict, command: dict) -> str:
    """The word with each placeholder replaced; a full run keeps one that no earlier command printed."""
    for holder, unrun in command["placeholders"].items():
        if holder in printed or command["mode"] != "run":
            word = word.replace(holder, printed.get(holder, unrun))
    return word


def _run(words: list[str], command: dict, group: dict) -> tuple[int, str]:
    env = {key: os.path.abspath(value) if key == "PYTHONPATH" else value for key, value in command["env"].items()}
    env = {**os.environ, **env}
    if words[0] == "sweeplab":
        entry, arg, argv = WORKER_ENTRY, words[1:], words
    elif words[:2] == ["python", "-c"]:
        # This module, for its python_c, after the command's own path (which it reads first, as python would).
        env["PYTHONPATH"] = os.pathsep.join(p for p in [env.get("PYTHONPATH", ""), HERE] if p)
        entry, arg, argv = "doc_runner:python_c", words[2], ["-c", *words[3:]]
    else:
        program = {"python": [sys.executable], "make": ["make", "-n", "-C", group["root"]]}[words[0]]
        done = subprocess.run([*program, *words[1:]], cwd=group["dir"], env=env, capture_output=True, text=True,
                              timeout=300)
        return done.returncode, done.stdout + done.stderr
    with tempfile.TemporaryDirectory(prefix="doc-command-") as folder:
        output = Path(folder) / "output"   # stdout and stderr interleaved, as a terminal shows them
        child = forks.server(WORKER_MODULES).fork(entry, arg, env=env, cwd=group["dir"], argv=argv, out=output,
                                                  err=output, name="sweeplab")
        try:
            code = child.wait_or_kill(600)
        except subprocess.TimeoutExpired:
            code = 124
        return code, output.read_text()


def python_c(code: str) -> None:
    """What `python -c CODE` runs: CODE as the __main__ module."""
    main = types.ModuleType("__main__")
    sys.modules["__main__"] = main
    exec(compile(code, "<string>", "exec"), main.__dict__)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
