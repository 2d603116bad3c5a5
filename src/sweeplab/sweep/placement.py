"""Where a sweep's local workers run: which GPUs each one sees, or how many CPU threads it gets."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field

from sweeplab.errors import ConfigError

AUTO = "auto"


@dataclass(frozen=True)
class Plan:
    """One entry of `gpus` per worker: the GPU ids it sees (empty lists on a CPU machine)."""

    gpus: list[list[str]]
    threads: int                      # torch CPU threads of each worker, shared by the processes of its trials
    devices_per_trial: int = 1
    unused: list[str] = field(default_factory=list)   # visible GPUs that no worker gets
    pci_order: bool = False           # ids are nvidia-smi's numbering: make CUDA count the same way

    @property
    def workers(self) -> int:
        return len(self.gpus)

    def env(self, index: int) -> dict[str, str]:
        """The variables that place worker `index` (CUDA_VISIBLE_DEVICES on a GPU machine)."""
        if not self.gpus[index]:
            return {}
        found = {"CUDA_VISIBLE_DEVICES": ",".join(self.gpus[index])}
        if self.pci_order:
            found["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        return found

    def describe(self) -> str:
        if not any(self.gpus):
            each = "" if self.devices_per_trial == 1 else f", {self.devices_per_trial} processes a trial"
            per_process = max(1, self.threads // self.devices_per_trial)   # as ranks/launch.py shares them out
            return (f"plan: {self.workers} worker{'s' * (self.workers != 1)} on CPU{each}, "
                    f"{per_process} thread{'s' * (per_process != 1)} each")
        line = "plan: " + " · ".join(f"worker {i} → GPU {','.join(ids)}" for i, ids in enumerate(self.gpus))
        if self.unused:
            line += f" · GPU {','.join(self.unused)} unused"
        return line


def parse_visible(value: str | None) -> list[str] | None:
    """The ids listed in CUDA_VISIBLE_DEVICES (None when it is unset). CUDA stops at the first
    invalid entry, so `-1` (a common way to hide every GPU) and what follows it are dropped."""
    if value is None:
        return None
    ids = []
    for item in (part.strip() for part in value.split(",")):
        if not item or item.startswith("-"):
            break
        ids.append(item)
    return ids


def visible_gpus() -> tuple[list[str], bool]:
    """(GPU ids, whether they are nvidia-smi's numbering): CUDA_VISIBLE_DEVICES when it is set, else
    `nvidia-smi -L`; no torch import, so the driver stays light."""
    given = parse_visible(os.environ.get("CUDA_VISIBLE_DEVICES"))
    if given is not None:
        return given, False
    if not shutil.which("nvidia-smi"):
        return [], False
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return [], False
    return [str(i) for i, line in enumerate(ln for ln in listed.splitlines() if ln.startswith("GPU "))], True


def check(devices_per_trial: int, gpus: list[str], trainer_devices=None) -> None:
    """Bad combinations of sweep.devices_per_trial, the visible GPUs and trainer.devices, as ConfigError.
    Only a GPU machine has something to check: on CPU, devices_per_trial only sets the worker count."""
    if not gpus:
        return
    k = devices_per_trial
    if k > len(gpus):
        raise ConfigError(f"sweep.devices_per_trial={k}: this machine has {len(gpus)} visible GPU"
                          f"{'s' * (len(gpus) != 1)} ({','.join(gpus)}); use at most {len(gpus)}")
    if isinstance(trainer_devices, bool) or not isinstance(trainer_devices, int):
        return  # "auto", a list of ids or a string: Lightning checks those
    if trainer_devices > k:
        raise ConfigError(f"trainer.devices={trainer_devices}: each worker sees only sweep.devices_per_trial={k} "
                          f"GPU{'s' * (k != 1)}; set sweep.devices_per_trial={trainer_devices} or trainer.devices=-1")
    if k > 1 and trainer_devices == 1:
        raise ConfigError(f"sweep.devices_per_trial={k} but trainer.devices=1: a trial would use one of its {k} "
                          f"GPUs; use trainer=ddp (every GPU its worker sees) or trainer.devices={k}")


def auto_workers(gpus: list[str], cores: int, devices_per_trial: int = 1) -> int:
    """`sweep.workers=auto`: one worker per group of devices_per_trial GPUs; on CPU, one worker per
    2 cores for each process of a trial (cores // (2 * devices_per_trial), at least 1): a trial of K
    processes (trainer=ddp_cpu) then still has 2 cores per process, and a 2-core machine runs one."""
    if gpus:
        return max(1, len(gpus) // devices_per_trial)
    return max(1, cores // (2 * devices_per_trial))


def make_plan(workers: int | str, devices_per_trial: int, gpus: list[str], cores: int,
              limit: int | None = None, pci_order: bool = False) -> Plan:
    """Worker i sees the i-th disjoint slice of devices_per_trial GPUs. More workers than slices (an
    explicit sweep.workers) share them round robin; GPUs left over by the slicing are reported unused.
    `limit` caps the number of workers (no more than the trials left to run)."""
    check(devices_per_trial, gpus)
    count = auto_workers(gpus, cores, devices_per_trial) if workers == AUTO else int(workers)
    if limit is not None:
        count = max(1, min(count, limit))
    if not gpus:
        # Each worker's share; a multi-process trial divides it between its ranks (ranks/launch.py).
        threads = max(1, cores // count)
        return Plan([[] for _ in range(count)], threads, devices_per_trial)
    k = devices_per_trial
    slices = [gpus[i * k:(i + 1) * k] for i in range(len(gpus) // k)]
    assigned = [slices[i % len(slices)] for i in range(count)]
    used = {g for ids in assigned for g in ids}
    threads = max(1, cores // count)
    return Plan(assigned, threads, k, [g for g in gpus if g not in used], pci_order)
