"""The tags that record where a run's initial weights came from, and how `sweeplab reproduce` reuses them.

Imports neither torch nor MLflow: reproduce reads them before deciding to load either.
"""

from __future__ import annotations

TAG = "sweeplab.init_from"   # what the user wrote; TAG.resolved, .run_id, .model_version, .digest pin it down


def init_tags(written: str, resolved: str, digest: str, run_id: str | None,
              model_version: str | None) -> dict[str, str]:
    tags = {TAG: written, f"{TAG}.resolved": resolved, f"{TAG}.digest": digest}
    if run_id:
        tags[f"{TAG}.run_id"] = run_id
    if model_version:
        tags[f"{TAG}.model_version"] = model_version
    return tags


def pin_source(cfg, tags: dict[str, str]) -> None:
    """For `sweeplab reproduce` (inside open_dict): load the weights the run started from by the source
    recorded on it, not by what it was given (an alias may have moved since), checked by their digest."""
    resolved = tags.get(f"{TAG}.resolved")
    if resolved:
        cfg.finetune.init_from = resolved
        cfg.finetune.init_digest = tags.get(f"{TAG}.digest")
