"""The starting process's side of the fork server: one server per set of preloaded modules, and the forked children."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from itertools import count
from pathlib import Path

from sweeplab.forks.alive import alive

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

    def send_signal(self, sig: int) -> None:
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """A `python -m sweeplab.forks.server MODULE...` started on first use by this process, for this process."""

    def __init__(self, modules: tuple[str, ...], env: dict[str, str]):
        self.modules, self.env = modules, env
        self.process: subprocess.Popen | None = None
        self.folder = Path(tempfile.mkdtemp(prefix="sweeplab-forks-"))
        self.numbers = count()

    def start(self) -> None:
        """Start the server now (its imports take seconds), so that it is ready when the first fork is asked."""
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen([sys.executable, "-m", SERVER_MODULE, *self.modules],
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=self.env)
            self._ready = False

    def fork(self, entry: str, arg, *, env: dict[str, str], cwd: str | None = None, argv: list[str] | None = None,
             out: Path | None = None, err: Path | None = None) -> Forked:
        """A child that runs `entry(arg)` (`module:function`) in `cwd` with exactly `env`; stdout and stderr to the
        files given, else to this process's stderr."""
        exit_path = self.folder / f"{next(self.numbers)}.exit"
        request = json.dumps({"entry": entry, "arg": arg, "argv": argv, "env": env, "cwd": cwd or os.getcwd(),
                              "exit": str(exit_path), "out": out and str(out), "err": err and str(err)})
        for _ in (1, 2):     # a server that died (killed, out of memory) is restarted once
            self.start()
            try:
                if not self._ready:
                    self._ready = bool(self.process.stdout.readline())
                self.process.stdin.write(request + "\n")
                self.process.stdin.flush()
                reply = self.process.stdout.readline()
            except (BrokenPipeError, OSError, ValueError):
                reply = ""
            if reply:
                return Forked(json.loads(reply)["pid"], exit_path)
            self.stop()
        raise RuntimeError(f"the fork server (python -m {SERVER_MODULE}) did not start a process; see its error above")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None


_servers: dict[tuple, ForkServer] = {}


def server(modules: tuple[str, ...], env: dict[str, str] | None = None) -> ForkServer:
    """This process's server for `modules`, made on first use (a forked child of this process makes its own).
    Its environment is `env` (default: this process's now); each child gets the one its request names."""
    key = (os.getpid(), modules)
    if key not in _servers:
        if not _servers:
            atexit.register(stop_all)
        _servers[key] = ForkServer(modules, dict(os.environ) if env is None else env)
    return _servers[key]


def stop_all() -> None:
    for key, found in list(_servers.items()):
        if key[0] == os.getpid():
            found.stop()
            shutil.rmtree(found.folder, ignore_errors=True)
            del _servers[key]
