"""End a sweep once, from whichever process finishes it: summary on the parent run, close it, register, explain."""

from __future__ import annotations

import json
import sys

from sweeplab.explain.after_sweep import explain_best_trial
from sweeplab.sweep import study as studies
from sweeplab.sweep.join import Joined, tidy
from sweeplab.sweep.report import summary as report
from sweeplab.sweep.settings import SweepSettings
from sweeplab.sweep.storage import study_lock
from sweeplab.tracking.registry import ALIAS, register


def finish_sweep(joined: Joined, settings: SweepSettings, status: str = "FINISHED",
                 only_if_complete: bool = False) -> bool:
    """Record the summary on the parent run and close it with `status`; then, outside the study's lock,
    register the best trial's model (sweep.register_as) and, when FINISHED, explain it
    (tracking.log_explanations). The driver calls this at its end; a `sweeplab worker` started by hand
    calls it with `only_if_complete`, which does nothing unless n_trials are finished and none runs.
    Returns False, having written nothing, when another process already finished the study with
    these very counts, so the model is registered once."""
    client, study, parent_run_id = joined.client, joined.study, joined.parent_run_id
    with study_lock(settings.storage, settings.study_name):
        tidy(client, study, parent_run_id)
        found = studies.counts(study)
        if only_if_complete and (found["finished"] < settings.n_trials or found["RUNNING"]):
            return False
        parent = client.get_run(parent_run_id)
        recorded = parent.data.tags.get("sweeplab.trials")
        if parent.info.status == status and recorded and json.loads(recorded) == dict(found):
            return False
        report.record_on_parent(client, parent_run_id, study, settings)
        client.set_terminated(parent_run_id, status)
    if settings.register_as and studies.best_trials(study):
        link = register(client, parent_run_id, settings.register_as)
        print(f"registered the best trial's model as {link} ({settings.register_as}@{ALIAS})", flush=True)
    if status == "FINISHED":   # not after Ctrl-C or failures
        explain_best_trial(client, parent_run_id)
    sys.stdout.flush()
    return True
