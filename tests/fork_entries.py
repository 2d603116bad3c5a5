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
