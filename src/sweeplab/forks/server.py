"""`python -m sweeplab.forks.server MODULE...`: import the modules once, then fork one child per request.

The server runs nothing itself and touches no GPU, so its children can still initialise CUDA (a fork
of a process with CUDA initialised cannot: that is why nothing is forked from a worker or rank 0).

Protocol, one JSON object per line. The server says {"ready": pid} once its imports are done. A request
on stdin: {"entry": "module:function", "arg": <JSON>, "argv": [...], "env": {...}, "cwd": DIR,
"exit": FILE, "out": FILE or null, "err": FILE or null}; the reply on stdout: {"pid": pid}. The child
becomes what a fresh `python` started with that env, cwd and argv would be, calls `function(arg)`, and
leaves its exit code in FILE as it ends. The server exits when its stdin closes, i.e. when the process
that started it ends.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import pkgutil
import signal
import sys
import threading
import traceback


def _redirect(path: str | None, fd: int, default: int) -> None:
    if path is None:
        os.dup2(default, fd)
        return
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(target, fd)
    os.close(target)


def _child(request: dict) -> None:
    """In the forked child: become the requested process, run the entry, leave the exit code, never return."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)   # the child may wait on processes of its own
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _redirect(request.get("err"), 2, 2)
        _redirect(request.get("out"), 1, 2)              # stdout is the server's reply pipe: never inherit it
        sys.stdin.close()
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        # What a fresh interpreter would put on sys.path from PYTHONPATH (the user's own code, for one).
        sys.path[:0] = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.argv = list(request.get("argv") or [sys.executable])
        code = pkgutil.resolve_name(request["entry"])(request["arg"])
        code = 0 if code is None else code
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, (int, type(None))):
            print(e.code, file=sys.stderr)
    except KeyboardInterrupt:
        code = 128 + signal.SIGINT
    except BaseException:
        sys.excepthook(*sys.exc_info())   # as the interpreter would: the entry may have set its own hook
    finally:
        _end(request["exit"], code)


def _end(exit_file: str, code: int) -> None:
    """What an interpreter does as it exits (join its threads, run atexit), then the exit code, then exit."""
    try:
        threading._shutdown()   # noqa: SLF001 - the interpreter's own wait for non-daemon threads
        atexit._run_exitfuncs()
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            with open(exit_file, "w") as out:
                out.write(str(code))
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
            os._exit(code)


def serve(modules: list[str]) -> None:
    for name in modules:
        importlib.import_module(name)
    if "torch" in sys.modules:
        # The first optimizer step of a process loads torch._dynamo (≈1 s): pay it here, on the CPU.
        import torch

        weight = torch.nn.Parameter(torch.zeros(1))
        weight.grad = torch.zeros(1)
        torch.optim.Adam([weight]).step()

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)   # the kernel reaps finished children
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # Ctrl-C is for the children; this ends with its stdin
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        print(json.dumps({"pid": pid}), flush=True)


if __name__ == "__main__":
    serve(sys.argv[1:])
