"""The report's figures, drawn with matplotlib and returned as base64 PNG (inline in the HTML: no scripts, no CDN)."""

from __future__ import annotations

import base64
import io
import math

import matplotlib

matplotlib.use("Agg")   # files only, never a window (set before pyplot is imported)
import matplotlib.pyplot as plt  # noqa: E402
from optuna.distributions import CategoricalDistribution  # noqa: E402

from sweeplab.sweep.report.data import TOP_CURVES, SweepRecord, TrialRow  # noqa: E402

WIDTH, HEIGHT, DPI = 6.4, 3.6, 110
WIDE = 2 * WIDTH   # the parallel coordinates and the learning curves span the page
SEEDED_COLOUR, OTHER_COLOUR, BEST_COLOUR = "#9aa0a6", "#b3b8bd", "#d62728"


def draw_all(record: SweepRecord) -> dict[str, str | None]:
    """Figure name -> its PNG as base64, or None when there is nothing to draw (the report says why)."""
    return {"history": history(record), "importances": importances(record),
            "parallel": parallel(record), "curves": curves(record)}


def history(record: SweepRecord) -> str | None:
    """Each complete trial's value by trial number, the best so far as a step line; seeded trials in grey."""
    complete = [t for t in record.trials if t.state == "COMPLETE"]
    if not complete and not record.seeded:
        return None
    figure, axes = plt.subplots(figsize=(WIDTH, HEIGHT))
    if record.seeded:
        axes.scatter([s.number for s in record.seeded], [s.values[0] for s in record.seeded], marker="D",
                     color=SEEDED_COLOUR, label="seeded by warm start", zorder=2)
    if complete:
        numbers, values = [t.number for t in complete], [t.values[0] for t in complete]
        axes.scatter(numbers, values, color="#1f77b4", label="complete trial", zorder=3)
        better = max if record.directions[0] == "maximize" else min
        best = [better(values[: i + 1]) for i in range(len(values))]
        axes.step(numbers, best, where="post", color=BEST_COLOUR, label="best so far", zorder=4)
    axes.set_xlabel("trial")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.set_ylabel(record.metrics[0])
    axes.set_title("Optimisation history")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return to_png(figure)


def importances(record: SweepRecord) -> str | None:
    if not record.importances:
        return None
    names = list(record.importances)[::-1]   # the most important on top
    figure, axes = plt.subplots(figsize=(WIDTH, max(1.6, 0.45 * len(names) + 0.9)))
    axes.barh(names, [record.importances[n] for n in names], color="#1f77b4")
    for y, name in enumerate(names):
        axes.annotate(f"{record.importances[name]:.2f}", (record.importances[name], y), xytext=(3, 0),
                      textcoords="offset points", va="center", fontsize=8)
    axes.set_xlabel(f"importance for {record.metrics[0]} (fANOVA, sums to 1)")
    axes.set_title("Parameter importances")
    axes.set_xlim(0, max(record.importances.values()) * 1.15 or 1)
    return to_png(figure)


def parallel(record: SweepRecord) -> str | None:
    """One line per complete trial across its params (each axis spans the param's search range; log
    ranges on a log scale) and the metric, coloured by the metric; the best trial in red."""
    complete = [t for t in record.trials if t.state == "COMPLETE"]
    if not complete:
        return None
    keys = list(record.importances or {}) or sorted({k for t in complete for k in t.params})
    keys = [k for k in keys if all(k in t.params for t in complete)]
    values = [t.values[0] for t in complete]
    low, high = min(values), max(values)
    scaled = [(v - low) / ((high - low) or 1.0) for v in values]
    columns = [_axis(key, complete) for key in keys]
    columns.append((record.metrics[0], scaled, f"{low:.4g}", f"{high:.4g}", None))
    figure, axes = plt.subplots(figsize=(WIDE, 4.2))
    colours = plt.get_cmap("viridis" if record.directions[0] == "maximize" else "viridis_r")
    best = record.best[0] if record.best else None
    for i, trial in enumerate(complete):
        ys = [column[1][i] for column in columns]
        is_best = trial.number == best
        axes.plot(range(len(columns)), ys, color=BEST_COLOUR if is_best else colours(scaled[i]),
                  linewidth=2.5 if is_best else 1.2, alpha=1.0 if is_best else 0.75, zorder=3 if is_best else 2)
    for x, (name, _, bottom, top, ticks) in enumerate(columns):
        axes.axvline(x, color="0.8", zorder=1)
        if ticks:   # a categorical param: every choice at its place
            for position, text in ticks:
                axes.annotate(text, (x, position), xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
        else:
            axes.annotate(top, (x, 1), xytext=(0, 5), textcoords="offset points", ha="center", fontsize=8)
            axes.annotate(bottom, (x, 0), xytext=(0, -11), textcoords="offset points", ha="center", fontsize=8)
    axes.set_xticks(range(len(columns)), [c[0] for c in columns], fontsize=9)
    axes.set_yticks([])
    axes.set_ylim(-0.12, 1.12)
    axes.set_title(f"Parallel coordinates ({len(complete)} complete trials; best in red)")
    for side in ("left", "right", "top"):
        axes.spines[side].set_visible(False)
    return to_png(figure)


def curves(record: SweepRecord) -> str | None:
    """sweep.metric per epoch as MLflow recorded it: the best trials in colour, every other trial in grey
    (a pruned one stops where it was pruned)."""
    others, top = curve_trials(record)
    if not others and not top:
        return None
    figure, axes = plt.subplots(figsize=(WIDE, HEIGHT))
    for trial in others:
        style = "--" if trial.state == "PRUNED" else "-"
        axes.plot(*zip(*trial.curve), style, color=OTHER_COLOUR, linewidth=1, zorder=1)
    for rank, trial in enumerate(top):
        axes.plot(*zip(*trial.curve), marker="o", markersize=3, linewidth=2 if rank == 0 else 1.3, zorder=3,
                  label=f"trial {trial.number} ({trial.values[0]:.4g})")
    axes.plot([], [], color=OTHER_COLOUR, label="other trials (dashed: pruned)")
    axes.set_xlabel("epoch")
    axes.set_ylabel(record.metrics[0])
    axes.set_title(f"Learning curves of the {'top trial' if len(top) == 1 else f'top {len(top)} trials'} (from MLflow)")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    return to_png(figure)


def curve_trials(record: SweepRecord) -> tuple[list[TrialRow], list[TrialRow]]:
    """The trials drawn in grey and the best ones drawn in colour (best first): those with two epochs or
    more, since a trial pruned after its first epoch is a point, not a curve."""
    drawn = [t for t in record.trials if len(t.curve) > 1]
    top = [record.trial(n) for n in record.ranked[:TOP_CURVES]]
    return ([t for t in drawn if t.number not in record.ranked[:TOP_CURVES]],
            [t for t in top if len(t.curve) > 1])


def to_png(figure) -> str:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=DPI)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _axis(key: str, trials: list[TrialRow]) -> tuple:
    """(name, each trial's place in 0..1, bottom label, top label, categorical ticks or None)."""
    distribution = trials[0].distributions[key]
    values = [t.params[key] for t in trials]
    if isinstance(distribution, CategoricalDistribution):
        choices = list(distribution.choices)
        spread = max(len(choices) - 1, 1)
        return (key, [choices.index(v) / spread for v in values], "", "",
                [(i / spread, str(c)) for i, c in enumerate(choices)])
    low, high = distribution.low, distribution.high
    scale = math.log10 if distribution.log else float
    places = [(scale(v) - scale(low)) / ((scale(high) - scale(low)) or 1.0) for v in values]
    name = f"{key} (log)" if distribution.log else key
    return name, places, f"{low:.3g}", f"{high:.3g}", None
