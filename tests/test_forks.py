"""The fork server: a forked child is what a fresh process with its env, cwd and argv would be, and says how it ended."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sweeplab.forks import client as forks

TESTS = str(Path(__file__).parent)


@pytest.fixture
def server():
    started = forks.ForkServer(("json",), {**os.environ, "FORK_TEST_VALUE": "the server's"})
    yield started
    started.stop()
    assert started.process is None


def test_a_child_runs_the_entry_with_its_own_env_cwd_argv_and_output_files(server, tmp_path):
    out, err = tmp_path / "out.log", tmp_path / "err.log"
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": TESTS, "FORK_TEST_VALUE": "the child's"}
    child = server.fork("fork_entries:report", {"code": 3}, env=env, cwd=str(tmp_path), argv=["prog", "a", "b"],
                        out=out, err=err)
    assert child.wait(timeout=60) == 3
    assert out.read_text() == (f"cwd={tmp_path} argv=['a', 'b'] value=the child's "
                               f"from={Path(TESTS) / 'fork_entries.py'}\n")
    assert err.read_text() == "to stderr\n"
    # The starting process holds neither file: the child opened them.
    held = {os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")}
    assert not held & {str(out), str(err)}


@pytest.mark.parametrize("arg, code", [({"exit": 2}, 2), ({"exit": None}, 0), ({"exit": "a message"}, 1)])
def test_sys_exit_gives_the_exit_code_a_process_would(server, tmp_path, arg, code):
    log = tmp_path / "log"
    child = server.fork("fork_entries:report", arg, env={"PYTHONPATH": TESTS}, cwd=str(tmp_path), out=log, err=log)
    assert child.wait(timeout=60) == code
    assert ("a message" in log.read_text()) == (arg["exit"] == "a message")


def test_sigint_interrupts_a_child_and_sigkill_reads_as_minus_9(server, tmp_path):
    log = tmp_path / "log"
    children = [server.fork("fork_entries:wait", 60, env={"PYTHONPATH": TESTS}, cwd=str(tmp_path), out=log, err=log)
                for _ in range(2)]
    time.sleep(1.0)   # the children are in their sleep
    assert [c.poll() for c in children] == [None, None]
    children[0].send_signal(signal.SIGINT)
    children[1].kill()
    assert children[0].wait(timeout=30) == 130 and "interrupted" in log.read_text()
    assert children[1].wait(timeout=30) == -signal.SIGKILL
    # An entry that does not catch Ctrl-C ends as a Python program would: 128 + SIGINT.
    plain = server.fork("fork_entries:sleep", 60, env={"PYTHONPATH": TESTS}, cwd=str(tmp_path), out=log, err=log)
    time.sleep(1.0)
    plain.send_signal(signal.SIGINT)
    assert plain.wait(timeout=30) == 130
    waiting = server.fork("fork_entries:wait", 60, env={"PYTHONPATH": TESTS}, cwd=str(tmp_path))
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            waiting.wait_or_kill(0.2)   # as subprocess.run(timeout=...) does: killed, then raised
        assert waiting.wait(timeout=30) == -signal.SIGKILL
    finally:
        waiting.kill()


def test_a_dead_server_is_started_again_and_ends_with_its_starter(server, tmp_path):
    first = server.fork("fork_entries:report", {}, env={"PYTHONPATH": TESTS}, cwd=str(tmp_path), out=tmp_path / "1")
    assert first.wait(timeout=60) == 0
    server.process.kill()
    server.process.wait()
    again = server.fork("fork_entries:report", {}, env={"PYTHONPATH": TESTS}, cwd=str(tmp_path), out=tmp_path / "2")
    assert again.wait(timeout=60) == 0
    pid = server.process.pid
    server.process.stdin.close()   # what the server sees when the process that started it ends
    server.process.wait(timeout=30)
    assert not forks.alive(pid)


def test_threads_asking_at_once_each_get_their_own_child(server, tmp_path):
    def run(index: int) -> tuple[int, str]:
        log = tmp_path / f"{index}.log"
        env = {"PYTHONPATH": TESTS, "FORK_TEST_VALUE": str(index)}
        child = server.fork("fork_entries:report", {"code": index}, env=env, cwd=str(tmp_path), out=log, err=log)
        return child.wait(timeout=60), log.read_text()

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, range(8)))
    assert [code for code, _ in results] == list(range(8))
    assert all(f"value={index} " in text for index, (_, text) in enumerate(results))


def test_a_childs_own_children_come_from_the_same_server_and_bear_their_names(server, tmp_path):
    """The grandchild is the server's child, and writes to its requester's own stdout (a file here)."""
    out, err = tmp_path / "out", tmp_path / "err"
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join([TESTS, *sys.path])}
    child = server.fork("fork_entries:fork_one", "sweeplab-test1", env=env, cwd=str(tmp_path), out=out, err=err)
    assert child.wait(timeout=60) == 0, err.read_text()
    assert out.read_text() == f"parent={server.process.pid} name=sweeplab-test1\n"
    assert err.read_text() == ""


def test_relative_output_files_are_the_requesters(server, tmp_path, monkeypatch):
    """A relative log path means the requester's folder, whichever folder the child runs in (and the server is in)."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "childs").mkdir()
    server.start()   # in the test's folder, not the requester's
    monkeypatch.chdir(tmp_path / "mine")
    child = server.fork("fork_entries:report", {}, env={"PYTHONPATH": TESTS}, cwd=str(tmp_path / "childs"),
                        out=Path("out.log"), err=Path("out.log"))
    assert child.wait(timeout=60) == 0
    assert f"cwd={tmp_path / 'childs'} " in (tmp_path / "mine" / "out.log").read_text()
