"""What the fork server's tests ask a child to run (imported by the child, from PYTHONPATH)."""

from __future__ import annotations

import os
import sys
import time


def report(arg: dict) -> int:
    """Print what the child is (cwd, argv, one env value, where this module came from); exit with arg's code."""
    print(f"cwd={os.getcwd()} argv={sys.argv[1:]} value={os.environ.get('FORK_TEST_VALUE')} from={__file__}")
    print("to stderr", file=sys.stderr)
    if arg.get("exit") is not None:
        sys.exit(arg["exit"])
    return arg.get("code", 0)


def wait(arg: float) -> int:
    """Sleep until interrupted: Ctrl-C (SIGINT) reaches it as KeyboardInterrupt."""
    try:
        time.sleep(arg)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 130
    return 0


def sleep(arg: float) -> None:
    """Sleep, and let an interruption end the process as it would end any Python program."""
    time.sleep(arg)


def fork_one(arg: str) -> int:
    """Fork a child of its own through sweeplab.forks, named `arg`; print the child's parent and name."""
    from sweeplab.forks import client as forks

    child = forks.server(("json",)).fork("fork_entries:name_and_parent", None, env=dict(os.environ), name=arg)
    return child.wait(timeout=60)


def name_and_parent(arg) -> int:
    """Print (to stdout only) this process's parent and name."""
    with open("/proc/self/comm") as comm:
        print(f"parent={os.getppid()} name={comm.read().strip()}", flush=True)
    return 0
