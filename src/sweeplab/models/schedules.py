"""Learning-rate schedules. Each is called as factory(optimizer, total_steps) and steps every batch."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR


def constant(optimizer: Optimizer, total_steps: int) -> LRScheduler:
    return LambdaLR(optimizer, lambda step: 1.0)


def cosine(optimizer: Optimizer, total_steps: int, min_lr: float = 0.0) -> LRScheduler:
    base = optimizer.param_groups[0]["lr"]
    floor = min_lr / base if base else 0.0

    def factor(step: int) -> float:
        progress = min(step / max(total_steps - 1, 1), 1.0)  # the last step trains at min_lr
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


def one_cycle(optimizer: Optimizer, total_steps: int, max_lr: float, pct_start: float = 0.3) -> LRScheduler:
    # Each parameter group peaks at max_lr times its lr relative to the first group's (a backbone's
    # finetune.backbone_lr_scale is kept); OneCycleLR would otherwise give every group the same max_lr.
    first = optimizer.param_groups[0]["lr"]
    peaks = [max_lr * (group["lr"] / first if first else 1.0) for group in optimizer.param_groups]
    return OneCycleLR(optimizer, max_lr=peaks, total_steps=max(total_steps, 2), pct_start=pct_start)


def linear_warmup(optimizer: Optimizer, total_steps: int, warmup: float = 0.06) -> LRScheduler:
    """BERT's fine-tuning schedule: from 0 up to optimizer.lr over the first `warmup` fraction of the steps,
    then linearly down to 0 at the last step."""
    if not 0 <= warmup < 1:
        raise ValueError(f"scheduler.warmup={warmup}: must be a fraction of the steps in [0, 1)")
    rise = max(int(round(warmup * total_steps)), 1)

    def factor(step: int) -> float:
        if step < rise:
            return (step + 1) / rise
        return max(0.0, (total_steps - step) / max(total_steps - rise, 1))

    return LambdaLR(optimizer, factor)
