"""The processes of one multi-device run: sweeplab starts ranks 1..K-1 beside rank 0 and ends them with the run.

Lightning's own `ddp` launcher re-executes `sys.argv` once per process and kills its launching
process when a rank fails: in a warm sweep worker that would re-run the worker (asking Optuna for
more trials) and take the worker down with a failed trial. So sweeplab plays torchrun's part for
one run: it sets the env:// rendezvous variables (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, NODE_RANK,
LOCAL_RANK, RANK), which tell Lightning that the processes were created outside it, and has each
other rank forked by a fork server (sweeplab.forks: the one this process came from, else its own;
Lightning imported once, no CUDA touched) to run the entry it is handed (`module:function`;
run_experiment hands its `follow`, which runs follower.py around the run's resolved config). Those
followers go through the same `run_experiment` with no MLflow run and no Optuna trial (rank 0 owns
both); decisions such as pruning reach them by broadcast. Every follower leaves with the run.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytorch_lightning as pl
import torch
# Lightning has no public name for "this strategy needs several processes on this machine":
# these launcher classes are how its strategies say it (listed in docs/private-apis.md).
from pytorch_lightning.strategies.launchers.multiprocessing import _MultiProcessingLauncher
from pytorch_lightning.strategies.launchers.subprocess_script import _SubprocessScriptLauncher
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from sweeplab.errors import ConfigError
from sweeplab.forks import client as forks

PARENT_ENV = "SWEEPLAB_RANK0_PID"   # followers exit when this process (rank 0) is gone
RENDEZVOUS_ENV = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "NODE_RANK", "LOCAL_RANK", "RANK", "OMP_NUM_THREADS")
JOIN_SECONDS = 30.0          # a finished run's followers exit at once; this only bounds a stuck one
FAILURE_GRACE_SECONDS = 3.0  # after rank 0 fails: time for a follower to say why it failed first


class RankFailed(RuntimeError):
    """Another rank of the run failed; its own error is in the message."""


def rank() -> int:
    """This process's global rank as its launcher set it (0 when it runs alone)."""
    return int(os.environ.get("RANK") or os.environ.get("LOCAL_RANK") or 0)


def is_follower() -> bool:
    """Whether this process is a rank other than 0: the one answer sweeplab gives, and it is Lightning's own
    (`rank_zero_only.rank`, which @rank_zero_only and the Trainer's global rank agree with). Lightning sets
    it from the launcher's environment as it loads (RANK, LOCAL_RANK, SLURM_PROCID, ...); a rank forked by
    sweeplab has it set by follower.py before its run starts."""
    return rank_zero_only.rank != 0


def processes_needed(trainer: pl.Trainer) -> int:
    """How many processes on this machine the trainer's strategy runs (1 for a single device)."""
    launcher = trainer.strategy.launcher
    if isinstance(launcher, _MultiProcessingLauncher):
        raise ConfigError("trainer.strategy: spawned or forked ranks (ddp_spawn, ddp_fork, ddp_notebook) are not "
                          "supported; use trainer.strategy=ddp (or trainer=ddp / trainer=ddp_cpu): sweeplab starts "
                          "the ranks itself, one MLflow run and one Optuna trial for all of them")
    if not isinstance(launcher, _SubprocessScriptLauncher):
        return 1
    if trainer.num_nodes > 1:
        raise ConfigError(f"trainer.num_nodes={trainer.num_nodes}: a run spans one machine; scale across machines "
                          "with more sweep workers sharing one study")
    return trainer.num_devices


def config_digest(resolved: dict) -> str:
    """A short hash of the resolved config (as a container): equal on every rank that trains the same thing."""
    text = json.dumps(resolved, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class RankAgreement(pl.Callback):
    """Every rank must train with the same resolved config: the digests of all ranks are gathered
    when the run is set up, kept for rank 0 to record, and a rank that differs stops the run."""

    def __init__(self, digest: str):
        self.digest = digest
        self.digests = [digest]

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if trainer.world_size == 1:
            return
        gathered: list[str | None] = [None] * trainer.world_size
        torch.distributed.all_gather_object(gathered, self.digest)
        self.digests = [str(d) for d in gathered]
        if len(set(self.digests)) > 1:
            raise RuntimeError(f"the ranks were given different configs (digests {', '.join(self.digests)})")

    def tags(self) -> dict[str, str]:
        """What rank 0 records: the number of ranks and each rank's config digest (nothing for one rank)."""
        if len(self.digests) == 1:
            return {}
        return {"sweeplab.world_size": str(len(self.digests)), "sweeplab.rank_configs": ",".join(self.digests)}


class RankGroup:
    """The follower processes of one run, and what they reported when they failed."""

    def __init__(self, folder: Path, followers: list[forks.Forked]):
        self.folder = folder
        self.followers = followers

    def explain(self, error: BaseException) -> str:
        """Rank 0's error, with the first error another rank reported (often the cause: when a rank dies,
        rank 0 sees only a broken connection)."""
        own = f"{type(error).__name__}: {error}"
        deadline = time.monotonic() + FAILURE_GRACE_SECONDS
        while self.followers and time.monotonic() < deadline and any(f.running() for f in self.followers):
            time.sleep(0.05)
        for index, process in enumerate(self.followers, start=1):
            reported = error_file(self.folder, index)
            if reported.exists():
                theirs = reported.read_text().strip()
                return own if theirs == own else f"rank {index}: {theirs} (rank 0: {own})"
            if process.returncode not in (None, 0):
                return f"rank {index} exited with code {process.returncode} (rank 0: {own})"
        return own


def error_file(folder: Path, rank_index: int) -> Path:
    return folder / f"rank-{rank_index}.error"


@contextmanager
def launched(trainer: pl.Trainer, handoff: dict, folder: Path, entry: str) -> Iterator[RankGroup]:
    """Run the body as rank 0 of the trainer's processes: followers started before, ended after.

    Each follower runs `entry` (`module:function`, called with the path of the handoff file, which holds
    `handoff`): the caller names what its followers run, so nothing here imports it.

    With one process, or inside processes someone else started (torchrun, a follower), nothing is
    started; the process group, if any, is destroyed at the end either way.
    """
    count = processes_needed(trainer)
    if count == 1 or "LOCAL_RANK" in os.environ:
        try:
            yield RankGroup(folder, [])
        finally:
            _destroy_process_group()
        return
    saved_env = {key: os.environ.get(key) for key in RENDEZVOUS_ENV}
    saved_threads = torch.get_num_threads()
    # The process's CPU threads are shared between its ranks (Lightning would take cores / K each).
    per_rank = max(1, saved_threads // count)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), WORLD_SIZE=str(count),
                      NODE_RANK="0", LOCAL_RANK="0", RANK="0", OMP_NUM_THREADS=str(per_rank))
    torch.set_num_threads(per_rank)
    path = folder / "handoff.json"
    path.write_text(json.dumps(handoff))
    server = _rank_server(entry)
    followers = [server.fork(entry, str(path), env={**os.environ, "LOCAL_RANK": str(r), "RANK": str(r),
                                                    PARENT_ENV: str(os.getpid())}, name=f"sweeplab-rank{r}")
                 for r in range(1, count)]
    group = RankGroup(folder, followers)
    try:
        yield group
    except BaseException:
        _destroy_process_group()
        _end(followers, wait=FAILURE_GRACE_SECONDS)
        raise
    else:
        _destroy_process_group()
        _end(followers, wait=JOIN_SECONDS)
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        torch.set_num_threads(saved_threads)


def _rank_server(entry: str) -> forks.ForkServer:
    """The fork server for follower ranks: the one a sweep's worker was forked from, else this process's own,
    which preloads the entry's module. Its environment is this process's before any run changed it; each
    follower gets the run's."""
    env = {k: v for k, v in os.environ.items() if k not in RENDEZVOUS_ENV}
    return forks.server((entry.partition(":")[0],), env)


def _end(followers: list[forks.Forked], wait: float) -> None:
    """Followers get `wait` seconds to leave on their own, then are killed; none outlives the run."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(f.running() for f in followers):
        time.sleep(0.02)
    for follower in followers:
        follower.kill()
    while any(f.running() for f in followers):
        time.sleep(0.01)


def _destroy_process_group() -> None:
    # A group left behind makes the next run's init fail, and can abort the process at exit.
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
