"""`tracking.log_explanations` on a train run: explain its model at the run's end (a sweep explains its best)."""

from __future__ import annotations

import sys

import pytorch_lightning as pl
from omegaconf import DictConfig

from sweeplab.explain.protocols import NotExplainable
from sweeplab.explain.settings import EXAMPLES, TAG


def explain_at_end(client, run_id: str, cfg: DictConfig, module: pl.LightningModule,
                   datamodule: pl.LightningDataModule) -> None:
    """Explain the trained module (the best checkpoint's weights) on its data module's test examples, when
    the config asks for it. A sweep's trial does not: the sweep explains its best trial once it ends."""
    # A bool: overrides keep the type of the key's default (config/compose.py), so a typo exits 2 before training.
    if not cfg.tracking.get("log_explanations"):
        return
    run = client.get_run(run_id)
    if run.data.tags.get("sweeplab.role") == "trial":
        return
    from sweeplab.explain.explanation import explain_and_log

    try:
        explain_and_log(client, run_id, module, datamodule, cfg.seed, EXAMPLES,
                        f"{run.info.run_name} ({run_id[:8]})")
    except NotExplainable as e:
        # The run trained and its model is logged: what cannot be explained is said, not a failed run.
        client.set_tag(run_id, TAG, f"not logged: {e}"[:5000])
        print(f"sweeplab: warning: no explanations: {e}", file=sys.stderr)
