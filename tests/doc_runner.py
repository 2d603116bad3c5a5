"""Runs the docs' commands planned by tests/test_docs.py, every `sweeplab` one in this one process.

`python tests/doc_runner.py PLAN.json RESULTS.json`. A `sweeplab` command goes through `sweeplab.cli.main`,
the function the installed `sweeplab` script calls, so torch, Lightning and MLflow are imported once for
all of them instead of once a command; `python` and `make` commands run as processes of their own.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import time
import traceback

PRINTED = {"train": re.compile(r"MLflow run ([0-9a-f]{32})"), "sweep": re.compile(r"parent run ([0-9a-f]{32})")}


def main(plan_file: str, results_file: str) -> int:
    from sweeplab.cli import main as sweeplab

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
                rc, output = _run(sweeplab, words, command, group)
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


def _run(sweeplab, words: list[str], command: dict, group: dict) -> tuple[int, str]:
    os.chdir(group["dir"])
    env = {key: os.path.abspath(value) if key == "PYTHONPATH" else value for key, value in command["env"].items()}
    if words[0] != "sweeplab":
        program = {"python": [sys.executable], "make": ["make", "-n", "-C", group["root"]]}[words[0]]
        done = subprocess.run([*program, *words[1:]],
                              env={**os.environ, **env}, capture_output=True, text=True, timeout=300)
        return done.returncode, done.stdout + done.stderr
    saved_env, saved_path = dict(os.environ), list(sys.path)
    os.environ.update(env)
    sys.path[:0] = env.get("PYTHONPATH", "").split(os.pathsep) if "PYTHONPATH" in env else []
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            rc = sweeplab(words[1:])
    except SystemExit as e:   # argparse's own errors
        rc = e.code if isinstance(e.code, int) else 2
    except Exception:   # noqa: BLE001 - a crash is a result to report, not a reason to stop the others
        rc = 1
        out.write(traceback.format_exc())
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        sys.path[:] = saved_path
    return rc, out.getvalue()


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
