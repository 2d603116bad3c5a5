"""One of ranks 1..K-1 of a run that rank 0 started (see launch.py), forked by rank 0's fork server (sweeplab.forks).

It trains with exactly rank 0's resolved config, with the callbacks that must run on every rank
rebuilt from their `_target_` specs, through the `run` it is handed (sweeplab.experiment's `follow`
hands run_experiment: the one path, which records nothing on this rank). It writes nothing to MLflow
or Optuna. On failure it leaves its error line for rank 0 and exits 1; it also exits when rank 0
disappears, so no follower outlives its run. `python -m sweeplab.ranks.follower ENTRY HANDOFF`
runs one without the server (ENTRY: `sweeplab.experiment:follow`).
"""

from __future__ import annotations

import json
import os
import pkgutil
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from sweeplab.ranks import launch
from sweeplab.forks.alive import alive

# The run of one follower: (rank 0's resolved config as a DictConfig, the every-rank callbacks).
Run = Callable[[Any, list], Any]


def _exit_with_rank_0(pid: int) -> None:
    # If rank 0 is killed outright (SIGKILL), nothing else would end this process.
    def watch() -> None:
        while alive(pid):
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-rank-0", daemon=True).start()


def main(handoff: str | Path, run: Run) -> int:
    handoff_path = Path(handoff)
    rank_0 = os.environ.get(launch.PARENT_ENV)
    if rank_0:
        _exit_with_rank_0(int(rank_0))
    handed = json.loads(handoff_path.read_text())
    import torch
    from hydra.utils import instantiate
    from lightning_utilities.core.rank_zero import rank_zero_only as utilities_rank_zero_only
    from omegaconf import OmegaConf
    from pytorch_lightning.utilities.rank_zero import rank_zero_only

    # Forked from a server that imported torch and Lightning before this rank's environment was set:
    # what they read from it at import time is set here.
    rank_zero_only.rank = utilities_rank_zero_only.rank = launch.rank()
    if os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

    try:
        cfg = OmegaConf.create(handed["config"])
        callbacks = [instantiate(spec) for spec in handed["callbacks"]]
        run(cfg, callbacks)   # a pruned run returns normally here too
    except BaseException as e:
        launch.error_file(handoff_path.parent, launch.rank()).write_text(f"{type(e).__name__}: {e}"[:2000])
        raise
    return 0


if __name__ == "__main__":
    entry, handoff_file = sys.argv[1:3]
    sys.exit(pkgutil.resolve_name(entry)(handoff_file))
