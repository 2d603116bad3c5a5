"""A sweep's view in the MLflow UI: its trials, its metric as a column, best first, behind one link.

The MLflow UI opens an experiment with the view state stored in the experiment tag
`mlflow.sharedViewState.<KEY>` when its URL carries `viewStateShareKey=<KEY>` (what its "Share" button
writes). That state holds the search facets (`searchFilter`, `orderByKey`, `orderByAsc`) and the table's
UI state (`selectedColumns`, ...), all but which runs are expanded, pinned or hidden: the UI drops those
keys from a shared state. So the view filters on the sweep's trial runs, which the UI then lists as rows
of their own, rather than opening the parent run's row. Column keys are the UI's canonical
`metrics.`NAME`` form; the UI reads the tag as plain JSON.
"""

from __future__ import annotations

import hashlib
import json

SHARED_VIEW_TAG = "mlflow.sharedViewState."   # the UI's prefix for a shared view's experiment tag
DEFAULT_COLUMNS = ["attributes.`Source`", "attributes.`Models`", "attributes.`Dataset`"]   # the UI's own


def sweep_view_key(study_name: str) -> str:
    """The share key of a sweep's view: tag keys allow few characters, study names many."""
    return "sweep-" + hashlib.sha256(study_name.encode()).hexdigest()[:16]


def sweep_view(study_name: str, metric: str, maximize: bool) -> str:
    """The view state (JSON) of a sweep's trials: its metric shown and sorted, best first."""
    quoted = study_name.replace("'", "\\'")
    column = f"metrics.`{metric}`"
    return json.dumps({
        "searchFilter": f"tags.`sweeplab.role` = 'trial' and tags.`optuna.study_name` = '{quoted}'",
        "orderByKey": column,
        "orderByAsc": not maximize,
        "selectedColumns": [*DEFAULT_COLUMNS, column],
    })


def record_sweep_view(client, experiment_id: str, study_name: str, metric: str, maximize: bool) -> str:
    """Store the sweep's view on its experiment; its share key."""
    key = sweep_view_key(study_name)
    client.set_experiment_tag(experiment_id, SHARED_VIEW_TAG + key, sweep_view(study_name, metric, maximize))
    return key
