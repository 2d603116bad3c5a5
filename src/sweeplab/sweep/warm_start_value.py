"""The `sweep.warm_start` value (`STUDY[,TOP_K]` or `PARENT_RUN_ID[,TOP_K]`): read, and kept one value by Hydra.

The composer quotes it on the command line (config/overrides.py, which owns the key's name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from omegaconf import ListConfig

from sweeplab.config.overrides import WARM_START_KEY as KEY
from sweeplab.errors import ConfigError

RUN_ID = re.compile(r"[0-9a-f]{32}")   # an MLflow run id; anything else names a study


@dataclass(frozen=True)
class WarmStart:
    source: str                  # as given: a study name, or a sweep's parent MLflow run id
    top_k: int | None = None     # only the best k complete trials that fit the new space; None: all of them
    study_name: str | None = None     # the source study, once resolved (warm_start.resolve)
    parent_run_id: str | None = None  # the source sweep's parent run, when known

    @property
    def is_run_id(self) -> bool:
        return bool(RUN_ID.fullmatch(self.source))

    def describe(self) -> str:
        return f"{self.source},{self.top_k}" if self.top_k else self.source


def parse(value) -> WarmStart | None:
    """null, `NAME`, `NAME,K` (or the list `[NAME, K]`); anything else is a ConfigError naming the key."""
    if value is None or value == "":
        return None
    listed = isinstance(value, (list, tuple, ListConfig))
    parts = [str(v).strip() for v in value] if listed else [p.strip() for p in str(value).rsplit(",", 1)]
    if len(parts) > 2 or not parts[0]:
        raise ConfigError(f"{KEY}={_shown(value)}: give a study name or a sweep's parent run id, optionally "
                          f"with the number of best trials to take: {KEY}=NAME or {KEY}=NAME,5")
    top_k = None
    if len(parts) == 2:
        if not parts[1].isdigit() or int(parts[1]) < 1:
            raise ConfigError(f"{KEY}={_shown(value)}: top_k '{parts[1]}' must be an integer of at least 1 "
                              f"(the best k trials of the source study), e.g. {KEY}={parts[0]},5")
        top_k = int(parts[1])
    return WarmStart(source=parts[0], top_k=top_k)


def _shown(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple, ListConfig)) else str(value)
