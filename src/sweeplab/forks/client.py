"""The starting process's side of the fork server: one server per set of preloaded modules, and the forked children."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from itertools import count
from pathlib import Path

from sweeplab.forks.alive import alive
from sweeplab.forks.env import MODULES_ENV, SERVER_ENV

SERVER_MODULE = "sweeplab.forks.server"


class Forked:
    """One forked child, known by pid; its exit code is left in a file. Answers like a subprocess.Popen."""

    def __init__(self, pid: int, exit_path: Path):
        self.pid = pid
        self.exit_path = exit_path

    def running(self) -> bool:
        return alive(self.pid)

    @property
    def returncode(self) -> int | None:
        """None while it runs; its exit code after; -9 when it was killed before it could say."""
        if self.running():
            return None
        return int(self.exit_path.read_text()) if self.exit_path.exists() else -signal.SIGKILL

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.running():
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout)
            time.sleep(0.02)
        return self.returncode

    def wait_or_kill(self, timeout: float) -> int:
        """Its exit code, as `subprocess.run(timeout=...)` waits: killed, and TimeoutExpired raised, past `timeout`."""
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def send_signal(self, sig: int) -> None:
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """A fork server this process uses: its own `python -m sweeplab.forks.server`, started on first use, or the
    one this process was itself forked from (whose socket its environment names)."""

    def __init__(self, modules: tuple[str, ...], env: dict[str, str], socket_path: str | None = None):
        self.modules, self.env = modules, env
        self.process: subprocess.Popen | None = None
        self.folder = Path(tempfile.mkdtemp(prefix="sweeplab-forks-"))   # private (0700): exit files, socket
        self.inherited = socket_path is not None
        self.socket_path = socket_path or str(self.folder / "server.sock")
        self.numbers = count()
        self.lock = threading.Lock()   # one start at a time, whichever thread asks
        self._ready = False            # its {"ready"} line read: its imports are done

    def start(self) -> None:
        """Start the server now (its imports take seconds), so that it is ready when the first fork is asked."""
        with self.lock:
            self._start()

    def _start(self) -> None:
        if self.inherited or (self.process is not None and self.process.poll() is None):
            return
        Path(self.socket_path).unlink(missing_ok=True)
        self.process = subprocess.Popen([sys.executable, "-m", SERVER_MODULE, self.socket_path, *self.modules],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=self.env)
        self._ready = False

    def _ask(self, request: str) -> str:
        """The server's reply to one request ("" when it could not answer)."""
        with self.lock:
            self._start()
            if not self.inherited and not self._ready:
                self._ready = bool(self.process.stdout.readline())
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                connection.connect(self.socket_path)
                # This process's stdout and stderr go along: a child with no files of its own writes there.
                socket.send_fds(connection, [(request + "\n").encode()], [1, 2])
                with connection.makefile("r") as stream:
                    return stream.readline()
        except OSError:
            return ""

    def fork(self, entry: str, arg, *, env: dict[str, str], cwd: str | None = None, argv: list[str] | None = None,
             out: Path | None = None, err: Path | None = None, name: str | None = None) -> Forked:
        """A child that runs `entry(arg)` (`module:function`) in `cwd` with `env`; stdout and stderr to the files
        given, else to this process's own; `name` is what `ps -o comm` and `top` show for it."""
        exit_path = self.folder / f"{next(self.numbers)}.exit"
        request = json.dumps({"entry": entry, "arg": arg, "argv": argv, "env": env, "cwd": cwd or os.getcwd(),
                              "exit": str(exit_path), "out": out and str(Path(out).absolute()),
                              "err": err and str(Path(err).absolute()),
                              "name": name})
        for _ in (1, 2):     # a server of this process's that died (killed, out of memory) is restarted once
            reply = self._ask(request)
            if reply:
                return Forked(json.loads(reply)["pid"], exit_path)
            if self.inherited:   # the server this process came from has ended: use one of its own
                self.inherited, self.socket_path = False, str(self.folder / "server.sock")
            self.stop()
        raise RuntimeError(f"the fork server at {self.socket_path} did not start a process; see its error above")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None


_servers: dict[tuple, ForkServer] = {}
_made = threading.Lock()


def server(modules: tuple[str, ...], env: dict[str, str] | None = None) -> ForkServer:
    """The fork server for `modules` in this process: the one this process was forked from when that one imported
    them all, else its own, made on first use (a forked child of this process makes its own). The own server's
    environment is `env` (default: this process's now); each child gets the one its request names."""
    key = (os.getpid(), modules)
    with _made:
        if key not in _servers:
            if not _servers:
                atexit.register(stop_all)
            inherited = os.environ.get(SERVER_ENV)
            if inherited and not set(modules) <= set(os.environ.get(MODULES_ENV, "").split(",")):
                inherited = None
            if inherited and not Path(inherited).exists():
                inherited = None   # that server has ended
            _servers[key] = ForkServer(modules, dict(os.environ) if env is None else env, inherited)
        return _servers[key]


def stop_all() -> None:
    for key, found in list(_servers.items()):
        if key[0] == os.getpid():
            found.stop()
            shutil.rmtree(found.folder, ignore_errors=True)
            del _servers[key]
