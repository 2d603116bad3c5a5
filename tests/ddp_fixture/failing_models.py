"""A Classifier that fails in one DDP rank only: the test of what a rank's failure does to its run."""

from __future__ import annotations

from sweeplab.models.classifier import Classifier


class FailsOnRank(Classifier):
    """Raises on rank `fail_rank` at training step `fail_step`; every other rank trains normally."""

    # `optimizer` and `scheduler` named, so that sweeplab hands this model its groups (a **kwargs does not count).
    def __init__(self, *args, optimizer=None, scheduler=None, fail_rank: int = 1, fail_step: int = 2, **kwargs):
        super().__init__(*args, optimizer=optimizer, scheduler=scheduler, **kwargs)
        self.fail_rank = fail_rank
        self.fail_step = fail_step

    def training_step(self, batch, batch_idx):
        if self.global_rank == self.fail_rank and batch_idx == self.fail_step:
            raise RuntimeError(f"boom on rank {self.global_rank}")
        return super().training_step(batch, batch_idx)
