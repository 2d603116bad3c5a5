"""`python -m sweeplab.forks.server SOCKET MODULE...`: import the modules once, then fork one child per request.

The server runs nothing itself and touches no GPU, so its children can still initialise CUDA (a fork
of a process with CUDA initialised cannot: that is why nothing is forked from a worker or rank 0).

Protocol, one JSON object per line. The server prints {"ready": pid} once its imports are done and
it listens on the Unix socket SOCKET. Each connection sends one request, {"entry": "module:function",
"arg": <JSON>, "argv": [...], "env": {...}, "cwd": DIR, "exit": FILE, "out": FILE or null, "err": FILE
or null, "name": NAME}, with the requester's stdout and stderr passed along (SCM_RIGHTS), and gets
one reply, {"pid": pid}. The child becomes what a fresh `python` started with that env, cwd, argv and
output (the files, else the requester's own) would be (named NAME in `ps -o comm` and `top`), calls
`function(arg)`, and leaves its exit code in FILE as it ends. Its environment also names this server
(SERVER_ENV, MODULES_ENV), so that the child's own children are forked here too. The server exits
when its stdin closes, i.e. when the process that started it ends.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import pkgutil
import select
import signal
import socket
import sys
import threading
import traceback

from sweeplab.forks.env import MODULES_ENV, SERVER_ENV


def _redirect(path: str | None, fd: int, default: int) -> None:
    """`fd` to the file (appended), else to `default`: the requester's own stdout or stderr."""
    target = default if path is None else os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(target, fd)
    os.close(target)


def _child(request: dict, stdio: list[int], socket_path: str, modules: list[str]) -> None:
    """In the forked child: become the requested process, run the entry, leave the exit code, never return."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)   # the child may wait on processes of its own
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _redirect(request.get("out"), 1, stdio[0])
        _redirect(request.get("err"), 2, stdio[1])
        sys.stdin.close()
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ.update({SERVER_ENV: socket_path, MODULES_ENV: ",".join(modules)})
        _name(request.get("name"))
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


def _name(name: str | None) -> None:
    """The process's name in `ps -o comm`, `top` and `pgrep` (its command line stays the server's)."""
    if name:
        try:
            with open("/proc/self/comm", "w") as comm:
                comm.write(name[:15])
        except OSError:
            pass   # not Linux: the name is a courtesy


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


def serve(socket_path: str, modules: list[str]) -> None:
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
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)   # in the starter's private (0700) folder
    listener.listen(64)
    print(json.dumps({"ready": os.getpid()}), flush=True)
    while True:
        readable, _, _ = select.select([sys.stdin, listener], [], [])
        if sys.stdin in readable and not sys.stdin.readline():
            return   # the process that started this server has ended
        if listener in readable:
            connection, _ = listener.accept()
            with connection:
                request, stdio = _receive(connection)
                pid = os.fork()
                if pid == 0:
                    listener.close()
                    connection.close()
                    _child(request, stdio, socket_path, modules)
                for fd in stdio:
                    os.close(fd)
                connection.sendall((json.dumps({"pid": pid}) + "\n").encode())


def _receive(connection: socket.socket) -> tuple[dict, list[int]]:
    """One request, and the requester's stdout and stderr, passed along with it (SCM_RIGHTS)."""
    data, stdio, _, _ = socket.recv_fds(connection, 1 << 16, 2)
    while not data.endswith(b"\n"):
        more = connection.recv(1 << 16)
        if not more:
            break
        data += more
    return json.loads(data), list(stdio)


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2:])
