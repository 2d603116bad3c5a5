"""`python -m sweeplab.ranks.server ENTRY`: a fork server for the follower ranks of one process's multi-device runs.

A fresh follower process pays Lightning's imports (≈4-6 s here) on every run; a fork of a process
that already imported them starts in milliseconds. launch.py starts this server once per process,
on that process's first multi-device run, and asks it for one fork per follower rank per run. The
server itself runs nothing and touches no GPU, so its children can still initialise CUDA (a fork of
a process with CUDA initialised cannot: that is why ranks are not forked from the worker itself).

ENTRY (`module:function`, given by whoever launches the ranks: sweeplab.experiment's `follow`) is
imported once, at start, and each child calls it with its handoff file; the server imports nothing
of sweeplab above this package.

Protocol, one JSON object per line: request {"handoff", "rank", "env", "cwd"} on stdin, reply
{"pid"} on stdout. The server exits when its stdin closes, i.e. when the process that started it
ends; each child leaves its exit code in `rank-<r>.exit` beside the handoff file.
"""

from __future__ import annotations

import json
import os
import pkgutil
import signal
import sys
import traceback
from pathlib import Path
from typing import Callable


def exit_file(handoff: Path, rank: int) -> Path:
    return handoff.parent / f"rank-{rank}.exit"


def _child(request: dict, entry: Callable[[str], int]) -> None:
    """In the forked child: become the follower rank, run it, leave the exit code, never return."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)   # the child may wait on processes of its own
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.dup2(2, 1)                                   # stdout is the server's reply pipe
        sys.stdin.close()
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        code = entry(request["handoff"])
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            exit_file(Path(request["handoff"]), request["rank"]).write_text(str(code))
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)


def serve(entry_name: str) -> None:
    # What every follower imports, once: torch, Lightning, Hydra, the data and model code (ENTRY's module).
    import torch

    entry = pkgutil.resolve_name(entry_name)

    # The first optimizer step of a process loads torch._dynamo (≈1 s): pay it here, on the CPU.
    weight = torch.nn.Parameter(torch.zeros(1))
    weight.grad = torch.zeros(1)
    torch.optim.Adam([weight]).step()

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)   # the kernel reaps finished children
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # Ctrl-C is for the ranks; this ends with its stdin
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request, entry)
        print(json.dumps({"pid": pid}), flush=True)


if __name__ == "__main__":
    serve(sys.argv[1])
