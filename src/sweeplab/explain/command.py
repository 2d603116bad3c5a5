"""`sweeplab explain RUN_ID`: explain a recorded run's model (a sweep's: its best trial's) and log it to that run."""

from __future__ import annotations

from sweeplab.errors import ConfigError
from sweeplab.tracking import links, lookup, store


def explain(run_id: str, uri: str, examples: int) -> int:
    if examples < 1:
        raise ConfigError(f"--examples={examples}: must be at least 1")
    client = store.open_client(uri)
    run = lookup.model_run(client, lookup.training_run(client, run_id))   # a cross-validation's: its best fold
    # torch, Lightning and Captum are imported once the run is known to be one to explain.
    from sweeplab.explain.explanation import explain_and_log
    from sweeplab.explain.record import rebuild
    from sweeplab.explain.settings import TAG

    rebuilt = rebuild(client, run)
    name = run.info.run_name
    logged = explain_and_log(client, run.info.run_id, rebuilt.module, rebuilt.datamodule, rebuilt.cfg.seed,
                             examples, f"{name} ({run.info.run_id[:8]})")
    if run.info.run_id != run_id:   # a sweep's parent run (or a CV run): say where the explanations are
        client.set_tag(run_id, TAG, f"on the best trial, run {run.info.run_id}")
    print(f"explained run {run.info.run_id} ({name}): {client.get_run(run.info.run_id).data.tags[TAG]}")
    print(f"logged {', '.join(logged)}")
    print(links.run_hint(uri, run.info.experiment_id, run.info.run_id))
    return 0
