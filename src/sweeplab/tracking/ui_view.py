"""A sweep's view in the MLflow UI: its trials, its metric as a column, best first, behind one link.

The MLflow UI keeps a saved view (its "Views" menu) in the experiment tag `mlflow.sharedViewState.<KEY>`:
an envelope {name, createdAt, updatedAt, state} whose `state` is the JSON of the view, and opens it from
the runs tab's URL `#/experiments/<ID>/runs?viewStateShareKey=<KEY>`. The state holds the search facets
(`searchFilter`, `orderByKey`, `orderByAsc`) and the table's UI state (`selectedColumns`, ...), all but
which runs are expanded, pinned or hidden: the UI drops those keys from a saved view. So the view filters
on the sweep's trial runs, which the UI then lists as rows of their own, rather than opening the parent
run's collapsed row. Column keys are the UI's canonical `metrics.`NAME`` form.
"""

from __future__ import annotations

import hashlib
import json
import time

SHARED_VIEW_TAG = "mlflow.sharedViewState."   # the UI's prefix for a saved view's experiment tag
DEFAULT_COLUMNS = ["attributes.`Source`", "attributes.`Models`", "attributes.`Dataset`"]   # the UI's own


def sweep_view_key(study_name: str) -> str:
    """The key of a sweep's view: tag keys allow few characters, study names many."""
    return "sweep-" + hashlib.sha256(study_name.encode()).hexdigest()[:16]


def sweep_view(study_name: str, metric: str, maximize: bool) -> dict:
    """The view state of a sweep's trials: its metric shown and sorted, best first."""
    quoted = study_name.replace("'", "\\'")
    column = f"metrics.`{metric}`"
    return {
        "searchFilter": f"tags.`sweeplab.role` = 'trial' and tags.`optuna.study_name` = '{quoted}'",
        "orderByKey": column,
        "orderByAsc": not maximize,
        "selectedColumns": [*DEFAULT_COLUMNS, column],
        "columnOrder": [column],   # first after the run's name, not past the table's right edge
    }


def record_sweep_view(client, experiment_id: str, study_name: str, metric: str, maximize: bool) -> str:
    """Store the sweep's view on its experiment (named in the UI's Views menu); its key."""
    key = sweep_view_key(study_name)
    now = int(time.time() * 1000)
    envelope = {"name": f"sweep {study_name}: trials by {metric}", "createdAt": now, "updatedAt": now,
                "state": json.dumps(sweep_view(study_name, metric, maximize))}
    client.set_experiment_tag(experiment_id, SHARED_VIEW_TAG + key, json.dumps(envelope))
    return key
