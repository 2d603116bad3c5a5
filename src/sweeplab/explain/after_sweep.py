"""At a sweep's end: explain its best trial, once, when its trials ran with `tracking.log_explanations`."""

from __future__ import annotations

import subprocess
import sys

from sweeplab.explain.settings import EXAMPLES, TAG


def explain_best_trial(client, parent_run_id: str) -> None:
    """In a `sweeplab explain` process of its own: the driver imports no torch. Does nothing when the
    sweep has no best trial yet, did not ask for explanations, or its best trial already has them."""
    best = client.get_run(parent_run_id).data.tags.get("sweeplab.best_run_id")
    if not best:
        return
    run = client.get_run(best)
    # Params hold each config value as JSON: "true" when the trials ran with tracking.log_explanations=true.
    if run.data.params.get("tracking.log_explanations") != "true" or TAG in run.data.tags:
        return
    print(f"explaining the best trial, run {best} (the first {EXAMPLES} test examples)", flush=True)
    # The parent run's id: `explain` finds its best trial, and tags the parent with where the files are.
    done = subprocess.run([sys.executable, "-m", "sweeplab.cli", "explain", parent_run_id, "--examples", str(EXAMPLES),
                           "--tracking-uri", client.tracking_uri])
    if done.returncode:
        print(f"sweeplab: warning: could not explain the best trial (exit {done.returncode}); "
              f"try `sweeplab explain {parent_run_id}`", file=sys.stderr, flush=True)
