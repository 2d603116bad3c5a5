"""`sweeplab compare TARGET`: the top runs of a sweep or experiment, read from MLflow alone."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.entities import Run

from sweeplab.errors import ConfigError
from sweeplab.tracking import lookup

FORMATS = ("table", "csv", "json")


@dataclass
class Comparison:
    title: str
    metric: str
    maximize: bool
    runs: list[Run]


def find(client: MlflowClient, target: str) -> Comparison:
    """TARGET is a sweep's parent run id, a sweep name, or an experiment name."""
    parent = _parent_run(client, target)
    if parent is not None:
        metric = parent.data.params.get("sweep.metric", "val/acc").split(",")[0]
        maximize = parent.data.params.get("sweep.direction", "maximize").split(",")[0] == "maximize"
        children = client.search_runs([parent.info.experiment_id],
                                      f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
        return Comparison(f"sweep {parent.info.run_name} (parent run {parent.info.run_id})", metric, maximize, children)
    experiment = client.get_experiment_by_name(target)
    if experiment is None:
        names = sorted(e.name for e in client.search_experiments())
        raise ConfigError(f"no sweep, sweep run or experiment named {target!r}; experiments here: "
                          f"{', '.join(names) or 'none'}")
    runs = [r for r in client.search_runs([experiment.experiment_id]) if not lookup.is_sweep(r)]
    first = runs[0].data.params if runs else {}
    return Comparison(f"experiment {target}", first.get("monitor.metric", "val/acc"),
                      first.get("monitor.mode", "max") == "max", runs)


def _parent_run(client: MlflowClient, target: str) -> Run | None:
    if len(target) == 32 and all(c in "0123456789abcdef" for c in target):
        run = lookup.get_run(client, target)
        if not lookup.is_sweep(run):
            raise ConfigError(f"run {target} is not a sweep's parent run; give a sweep name, a sweep run "
                              "id or an experiment name")
        return run
    experiment = client.get_experiment_by_name(f"sweep-{target}")
    if experiment is None:
        return None
    parents = client.search_runs([experiment.experiment_id], "tags.`sweeplab.role` = 'sweep'",
                                 order_by=["attributes.start_time DESC"], max_results=1)
    return parents[0] if parents else None


def rows(comparison: Comparison, top: int) -> tuple[list[str], list[dict]]:
    """The top runs (best first) with the params that vary across all of them, state and duration."""
    runs = comparison.runs
    varying = sorted(k for k in {k for r in runs for k in r.data.params}
                     if len({r.data.params.get(k) for r in runs}) > 1)
    sign = -1 if comparison.maximize else 1

    def order(run: Run):
        # Complete runs first, then pruned ones (stopped early), then failed or running ones.
        state = run.data.tags.get("optuna.state", run.info.status)
        rank = 0 if state in ("COMPLETE", "FINISHED") else 1 if state == "PRUNED" else 2
        value = run.data.metrics.get(comparison.metric)
        return (rank, value is None or math.isnan(value), sign * (value or 0.0))

    table = []
    for run in sorted(runs, key=order)[:top]:
        end = run.info.end_time or run.info.start_time
        table.append({"run_id": run.info.run_id, "name": run.info.run_name,
                      "state": run.data.tags.get("optuna.state", run.info.status),
                      comparison.metric: run.data.metrics.get(comparison.metric),
                      "seconds": round((end - run.info.start_time) / 1000, 1),
                      **{k: run.data.params.get(k) for k in varying}})
    return ["run_id", "name", "state", comparison.metric, "seconds", *varying], table


def render(columns: list[str], table: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(table, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, columns)
        writer.writeheader()
        writer.writerows(table)
        return out.getvalue().rstrip("\n")
    cells = [[_cell(row.get(c)) for c in columns] for row in table]
    widths = [max(len(x) for x in [c, *(r[i] for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(x.ljust(w) for x, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return "-"
    number = _number(value)
    if number is not None and not float(number).is_integer():
        return f"{number:.4g}"
    return str(value)


def plot(comparison: Comparison, columns: list[str], table: list[dict], path: str) -> None:
    """Parallel coordinates: one line per run over the numeric varying params, coloured by the metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes_names = [c for c in columns[5:] if all(_number(r.get(c)) is not None for r in table)]
    axes_names.append(comparison.metric)
    scored = [r for r in table if _number(r.get(comparison.metric)) is not None]
    if not scored:
        raise ConfigError("no run has the metric to plot")
    values = [[_number(r[c]) for c in axes_names] for r in scored]
    for i in range(len(axes_names) - 1):
        column = [v[i] for v in values]
        if min(column) > 0 and max(column) / min(column) >= 100:  # lr, weight decay: log scale
            for v in values:
                v[i] = math.log10(v[i])
            axes_names[i] = f"log10 {axes_names[i]}"
    lows = [min(v[i] for v in values) for i in range(len(axes_names))]
    highs = [max(v[i] for v in values) for i in range(len(axes_names))]
    scores = [v[-1] for v in values]
    colormap = plt.get_cmap("viridis")
    figure, axes = plt.subplots(figsize=(max(6, 2 * len(axes_names)), 5))
    for v, score in zip(values, scores):
        spread = max(scores) - min(scores) or 1.0
        ys = [(x - lo) / ((hi - lo) or 1.0) for x, lo, hi in zip(v, lows, highs)]
        axes.plot(range(len(axes_names)), ys, color=colormap((score - min(scores)) / spread), alpha=0.8)
    axes.set_xticks(range(len(axes_names)), axes_names, rotation=20)
    axes.set_yticks([])
    axes.set_title(f"{comparison.title}: top {len(scored)} by {comparison.metric}")
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
