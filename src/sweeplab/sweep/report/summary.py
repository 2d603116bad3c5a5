"""What a sweep leaves on its parent MLflow run, and the summary printed at the end."""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path

import optuna

from sweeplab.sweep.report.html import log_on_parent
from sweeplab.sweep.settings import SweepSettings
from sweeplab.sweep.study import best_trials, counts, ranked

PLOTS = ("plot_optimization_history", "plot_parallel_coordinate", "plot_param_importances",
         "plot_intermediate_values")


def log_best(client, run_id: str, study: optuna.Study, settings: SweepSettings) -> None:
    """The best complete trial's value under the sweep's own metric name, on the parent run (step: trials
    finished): the parent's row in the MLflow UI then shows how good the sweep got, beside its trials'.
    A multi-objective sweep has no one best value: it logs nothing here."""
    best = ranked(study)
    if best and not settings.multi_objective:
        client.log_metric(run_id, settings.metrics[0], best[0].values[0], step=counts(study)["finished"])


def record_on_parent(client, run_id: str, study: optuna.Study, settings: SweepSettings) -> None:
    """Best value and params, counts by state, the trials table, Optuna's plots and the one-page report.html."""
    found = counts(study)
    metrics = {f"trials/{state.lower()}": found[state] for state in ("COMPLETE", "PRUNED", "FAIL")}
    tags = {"sweeplab.trials": json.dumps({k: v for k, v in found.items()})}
    best = best_trials(study)
    if best:
        top = best[0]
        for name, value in zip(settings.metrics, top.values):
            metrics[f"best/{name}"] = value
        tags["sweeplab.best_trial"] = str(top.number)
        tags["sweeplab.best_params"] = json.dumps(top.params)[:5000]
        run = _child_run_of(client, run_id, top.number)
        if run:
            tags["sweeplab.best_run_id"] = run
    for key, value in metrics.items():
        client.log_metric(run_id, key, value)
    log_best(client, run_id, study, settings)
    for key, value in tags.items():
        client.set_tag(run_id, key, value)
    with tempfile.TemporaryDirectory() as folder:
        study.trials_dataframe().to_csv(Path(folder) / "trials.csv", index=False)
        client.log_artifact(run_id, str(Path(folder) / "trials.csv"))
        for path in _plots(study, settings, Path(folder)):
            client.log_artifact(run_id, str(path), "plots")
    log_on_parent(client, run_id, study)   # report.html: the one-page report


def _plots(study: optuna.Study, settings: SweepSettings, folder: Path) -> list[Path]:
    try:
        import matplotlib
    except ImportError:  # a lean install (bench/gpu_bundle.py leaves it out): the sweep goes on without plots
        print("sweeplab: skipped the plots: matplotlib is not installed")
        return []

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    written = []
    target = (lambda t: t.values[0]) if settings.multi_objective else None
    for name in PLOTS:
        if name == "plot_intermediate_values" and settings.multi_objective:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                kwargs = {"target": target, "target_name": settings.metrics[0]} if target else {}
                if name != "plot_intermediate_values" and not target:
                    kwargs["target_name"] = settings.metrics[0]
                axes = getattr(optuna_plots, name)(study, **kwargs)
            figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
            path = folder / f"{name.removeprefix('plot_')}.png"
            figure.set_size_inches(10, 6)
            figure.savefig(path, dpi=90, bbox_inches="tight")
            plt.close(figure)
            written.append(path)
        except (ValueError, RuntimeError, ZeroDivisionError) as e:
            # e.g. importances need two complete trials with varying params
            print(f"sweeplab: skipped {name}: {e}")
    return written


def _child_run_of(client, parent_run_id: str, number: int) -> str | None:
    parent = client.get_run(parent_run_id)
    runs = client.search_runs(
        [parent.info.experiment_id],
        f"tags.mlflow.parentRunId = '{parent_run_id}' and tags.`optuna.trial_number` = '{number}'",
        order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0].info.run_id if runs else None


def summary(study: optuna.Study, settings: SweepSettings, top: int = 5) -> str:
    found = counts(study)
    lines = [f"study {settings.study_name}: {found['COMPLETE']} complete, {found['PRUNED']} pruned, "
             f"{found['FAIL']} failed (n_trials={settings.n_trials})"]
    best = ranked(study)[:top]
    if not best:
        pruned = f": all {found['PRUNED']} finished trials were pruned" if found["PRUNED"] else ""
        return "\n".join(lines + [f"no trial completed{pruned}"])
    keys = list(settings.space.distributions)
    header = ["trial", *settings.metrics, *keys]
    rows = [[str(t.number), *(f"{v:.4g}" for v in t.values), *(_short(t.params.get(k)) for k in keys)]
            for t in best]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines.append(f"{'top trial' if len(rows) == 1 else f'top {len(rows)} trials'} (complete trials, best first):")
    lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in [header, *rows]]
    return "\n".join(lines)


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
