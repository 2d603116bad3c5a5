"""`sweeplab compare TARGET`: the top runs of a sweep or experiment, read from MLflow alone."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
from dataclasses import dataclass, field

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
    # run id -> the value it is ranked and shown by, where that is not its last `metric`: a sweep
    # with `sweep.objective=best` ranks each trial by its best epoch, as Optuna does.
    values: dict[str, float] = field(default_factory=dict)

    def value(self, run: Run) -> float | None:
        if is_cross_validation(run):   # its folds' mean (of each fold's best epoch)
            return run.data.metrics.get(f"cv/{self.metric}_mean")
        return self.values.get(run.info.run_id, run.data.metrics.get(self.metric))


def is_cross_validation(run: Run) -> bool:
    return "sweeplab.folds" in run.data.tags


def is_fold(run: Run) -> bool:
    """One fold of a cross-validation run: compared through that run, not beside it."""
    return run.data.tags.get("sweeplab.role") == "fold"


def find(client: MlflowClient, target: str) -> Comparison:
    """TARGET is a sweep's parent run id, a sweep name, or an experiment name."""
    parent = _parent_run(client, target)
    if parent is not None:
        metric = parent.data.params.get("sweep.metric", "val/acc").split(",")[0]
        maximize = parent.data.params.get("sweep.direction", "maximize").split(",")[0] == "maximize"
        children = client.search_runs([parent.info.experiment_id],
                                      f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
        # A sweep made before sweep.objective existed reported each trial's last epoch.
        best = parent.data.params.get("sweep.objective", "last") == "best"
        values = _best_epochs(client, [c for c in children if not is_cross_validation(c)], metric, maximize) \
            if best else {}
        return Comparison(f"sweep {parent.info.run_name} (parent run {parent.info.run_id})", metric, maximize,
                          children, values)
    experiment = client.get_experiment_by_name(target)
    if experiment is None:
        names = sorted(e.name for e in client.search_experiments())
        raise ConfigError(f"no sweep, sweep run or experiment named {target!r}; experiments here: "
                          f"{', '.join(names) or 'none'}")
    runs = [r for r in client.search_runs([experiment.experiment_id]) if not (lookup.is_sweep(r) or is_fold(r))]
    first = runs[0].data.params if runs else {}
    return Comparison(f"experiment {target}", first.get("monitor.metric", "val/acc"),
                      first.get("monitor.mode", "max") == "max", runs)


def _best_epochs(client: MlflowClient, runs: list[Run], metric: str, maximize: bool) -> dict[str, float]:
    """Each run's best value of `metric` over its history (one read a run)."""
    found = {}
    for run in runs:
        history = [m.value for m in client.get_metric_history(run.info.run_id, metric) if math.isfinite(m.value)]
        if history:
            found[run.info.run_id] = max(history) if maximize else min(history)
    return found


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


ORDER_RULE = "complete runs first, best first; then pruned ones, then failed or running ones"   # < 100 columns


def top_phrase(count: int, noun: str) -> str:
    """`top run`, `top 5 runs`."""
    return f"top {noun}" if count == 1 else f"top {count} {noun}s"


def rows(comparison: Comparison, top: int) -> tuple[list[str], list[dict]]:
    """The top runs (best first) with the params that vary across all of them, state and duration."""
    runs = comparison.runs
    varying = sorted(k for k in {k for r in runs for k in r.data.params}
                     if len({r.data.params.get(k) for r in runs}) > 1)
    sign = -1 if comparison.maximize else 1

    def order(run: Run):
        # ORDER_RULE: a pruned run's value is from fewer epochs, so it is not compared with complete ones.
        state = run.data.tags.get("optuna.state", run.info.status)
        rank = 0 if state in ("COMPLETE", "FINISHED") else 1 if state == "PRUNED" else 2
        value = comparison.value(run)
        return (rank, value is None or math.isnan(value), sign * (value or 0.0))

    # Cross-validation runs show their folds' spread beside the mean.
    spread = [f"{comparison.metric} std"] if any(map(is_cross_validation, runs)) else []
    table = []
    for run in sorted(runs, key=order)[:top]:
        end = run.info.end_time or run.info.start_time
        table.append({"run_id": run.info.run_id, "name": run.info.run_name,
                      "state": run.data.tags.get("optuna.state", run.info.status),
                      comparison.metric: comparison.value(run),
                      **({spread[0]: run.data.metrics.get(f"cv/{comparison.metric}_std")} if spread else {}),
                      "seconds": round((end - run.info.start_time) / 1000, 1),
                      **{k: run.data.params.get(k) for k in varying}})
    return ["run_id", "name", "state", comparison.metric, *spread, "seconds", *varying], table


def render(columns: list[str], table: list[dict], fmt: str, width: int | None = None) -> str:
    """The table as text for a terminal `width` columns wide ($COLUMNS, else the terminal's, else 100),
    as csv, or as json."""
    if fmt == "json":
        return json.dumps(table, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, columns)
        writer.writeheader()
        writer.writerows(table)
        return out.getvalue().rstrip("\n")
    return _wrapped(columns, table, width or shutil.get_terminal_size((100, 24)).columns)


def _wrapped(columns: list[str], table: list[dict], width: int) -> str:
    """Ranked rows (#) in blocks of columns that each fit `width`: run id, name, state, metric and seconds
    first, then the params. A trial's name is shown up to its first space (its params have columns), and a
    param whose values equal an earlier one's in every row (an interpolation) is named under the table."""
    short = {"name": lambda v: str(v).split(" ")[0] if v else v}
    cells = {c: [_cell(short.get(c, lambda v: v)(row.get(c))) for row in table] for c in columns}
    kept, same = [], []
    for c in columns:
        twin = next((k for k in kept if k not in columns[:5] and cells[k] == cells[c]), None)
        if twin is None or c in columns[:5]:
            kept.append(c)
            continue
        shown, hidden = sorted((twin, c), key=lambda k: (k.count("."), len(k)))   # the key users set
        kept[kept.index(twin)] = shown
        same.append(f"{hidden} = {shown}")
    ranks = [str(i + 1) for i in range(len(table))]
    blocks, block = [], []
    for c in kept:
        wanted = [*block, c]
        if block and sum(_width(x, cells[x]) + 2 for x in wanted) + len(str(len(table))) > width:
            blocks.append(block)
            wanted = [c]
        block = wanted
    blocks.append(block)
    lines = []
    for block in blocks:
        header = ["#", *block]
        widths = [max(len(r) for r in ["#", *ranks]), *(_width(c, cells[c]) for c in block)]
        if lines:
            lines.append("")
        lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
        for i, rank in enumerate(ranks):
            lines.append("  ".join(x.ljust(w) for x, w in zip([rank, *(cells[c][i] for c in block)], widths)).rstrip())
    if same:
        lines.append(f"(same values: {'; '.join(same)})")
    return "\n".join(lines)


def _width(column: str, values: list[str]) -> int:
    return max(len(x) for x in [column, *values])


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

    numeric = [c for c in columns[5:] if all(_number(r.get(c)) is not None for r in table)]
    # A param that only repeats another (model.backbone.dropout: ${model.dropout}) gets no axis of its own.
    axes_names = [c for c in sorted(numeric, key=lambda k: (k.count("."), len(k)))
                  if not any([r.get(k) for r in table] == [r.get(c) for r in table]
                             for k in numeric if (k.count("."), len(k)) < (c.count("."), len(c)))]
    axes_names = [c for c in numeric if c in axes_names] + [comparison.metric]
    scored = [r for r in table if _number(r.get(comparison.metric)) is not None]
    if not scored:
        raise ConfigError("no run has the metric to plot")
    values = [[_number(r[c]) for c in axes_names] for r in scored]
    ends = [(min(v[i] for v in values), max(v[i] for v in values)) for i in range(len(axes_names))]
    for i in range(len(axes_names) - 1):
        column = [v[i] for v in values]
        if min(column) > 0 and max(column) / min(column) >= 100:  # lr, weight decay: log scale
            for v in values:
                v[i] = math.log10(v[i])
            axes_names[i] = f"{axes_names[i]} (log scale)"
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
    axes.set_yticks([0, 1], ["lowest", "highest"])
    axes.set_ylim(-0.08, 1.08)
    for i, (lo, hi) in enumerate(ends):   # each axis's own scale, at its ends
        axes.axvline(i, color="0.85", zorder=0)
        axes.annotate(f"{hi:.4g}", (i, 1), xytext=(0, 6), textcoords="offset points", ha="center", fontsize=8)
        axes.annotate(f"{lo:.4g}", (i, 0), xytext=(0, -12), textcoords="offset points", ha="center", fontsize=8)
    axes.set_xlabel("parameter (varying across these runs), then the metric")
    axes.set_ylabel("value on each axis's own scale (its range printed at the ends)")
    colours = plt.cm.ScalarMappable(cmap=colormap, norm=plt.Normalize(min(scores), max(scores)))
    figure.colorbar(colours, ax=axes, label=comparison.metric)
    axes.set_title(f"{comparison.title}: {top_phrase(len(scored), 'run')} by {comparison.metric}")
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
