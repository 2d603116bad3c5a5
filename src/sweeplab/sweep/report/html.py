"""A sweep's one-page report: a single HTML file with inline PNG figures that opens offline (no script at all)."""

from __future__ import annotations

import datetime
import html
import tempfile
from pathlib import Path

import optuna
from mlflow.entities import Run

from sweeplab.errors import ConfigError
from sweeplab.sweep.report.data import SweepRecord, TrialRow, collect

ARTIFACT = "report.html"   # on the sweep's parent run
# (name, title, caption, full width): the two wide ones are drawn twice as wide (figures.WIDE).
FIGURES = (("history", "Optimisation history", "each complete trial's value; the red line is the best so far", False),
           ("importances", "Parameter importances", "how much each param explains the metric (fANOVA, complete "
            "trials)", False),
           ("parallel", "Parallel coordinates", "each axis spans the param's search range; colour: the metric", True),
           ("curves", "Learning curves", "the metric per epoch, read from the trials' MLflow runs", True))
STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1320px;
     color:#202124;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:0 0 8px}
.meta{color:#5f6368;margin:0 0 16px}.note{color:#5f6368;font-size:12px;margin:6px 0 0}
.cards{display:grid;grid-template-columns:1.4fr 1fr 1fr;gap:14px;margin-bottom:16px}
.card{border:1px solid #dadce0;border-radius:8px;padding:12px 14px}
.big{font-size:22px;font-weight:600}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:0 0 8px;align-items:baseline}
dt{color:#5f6368}dd{margin:0}
.plots{display:grid;grid-template-columns:1fr 1fr;gap:14px}
figure{margin:0;border:1px solid #dadce0;border-radius:8px;padding:8px}.wide{grid-column:1/-1}
figure img{width:100%;height:auto;display:block}figcaption{color:#5f6368;font-size:12px}
.missing{color:#b06000;padding:30px 8px}
table{border-collapse:collapse;font-size:13px}td,th{padding:3px 8px;text-align:left;border-bottom:1px solid #eee}
th{font-weight:600;color:#3c4043}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.best td{background:#fdecea}code{font-size:12px}a{color:#1a73e8;text-decoration:none}
section{margin-top:18px}.scroll{overflow-x:auto}
"""


def write(client, parent: Run, study: optuna.Study, path: str | Path) -> Path:
    """The report of the sweep (parent run, study) as one HTML file at `path`."""
    from sweeplab.sweep.report.figures import draw_all

    path = Path(path)
    if not path.parent.is_dir():
        raise ConfigError(f"--out {path}: no folder {path.parent}")
    record = collect(client, parent, study)
    path.write_text(render(record, draw_all(record)), encoding="utf-8")
    return path


def log_on_parent(client, run_id: str, study: optuna.Study) -> None:
    """report.html on the parent run, written afresh each time the summary is recorded."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:   # a lean install (bench/gpu_bundle.py leaves it out): no report, the sweep goes on
        print(f"sweeplab: skipped {ARTIFACT}: matplotlib is not installed")
        return
    with tempfile.TemporaryDirectory() as folder:
        path = write(client, client.get_run(run_id), study, Path(folder) / ARTIFACT)
        client.log_artifact(run_id, str(path))


def render(record: SweepRecord, figures: dict[str, str | None]) -> str:
    parent = record.parent
    params = parent.data.params
    objective = {"best": "best epoch", "last": "last epoch"}.get(params.get("sweep.objective", ""), "")
    goal = ", ".join(f"{m} ({d})" for m, d in zip(record.metrics, record.directions))
    meta = (f"parent run {_link(record, parent.info.run_id)} · {_e(goal)}{' · ' + objective if objective else ''}"
            f" · sampler {_e(_short(params.get('sweep.sampler')))} · pruner {_e(_short(params.get('sweep.pruner')))}"
            f" · written {datetime.datetime.now():%Y-%m-%d %H:%M}")
    parts = [f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<title>Sweep {_e(record.study_name)}</title><style>{STYLE}</style></head><body>",
             f"<h1>Sweep <code>{_e(record.study_name)}</code></h1><p class=\"meta\">{meta}</p>",
             "<div class=\"cards\">", _best_card(record), _counts_card(record), _epochs_card(record), "</div>",
             "<div class=\"plots\">", *(_figure(key, title, caption, wide, figures.get(key), record)
                                       for key, title, caption, wide in FIGURES), "</div>",
             _seeded_section(record), _trials_section(record), "</body></html>\n"]
    return "\n".join(p for p in parts if p)


def _best_card(record: SweepRecord) -> str:
    if not record.best:
        return "<div class=\"card\" id=\"best\"><h2>Best trial</h2><p>No trial completed.</p></div>"
    best = record.trial(record.best[0])
    # The first metric is the one trials are ranked by: shown big, with the id the tests and scripts read.
    first = ' class="big" id="best-value"'
    values = "".join(f"<dt>{_e(m)}</dt><dd{first if i == 0 else ''} data-metric=\"{_e(m)}\" "
                     f"data-value=\"{v!r}\">{v:.4g}</dd>" for i, (m, v) in enumerate(zip(record.metrics, best.values)))
    front = (f"<p class=\"note\">one of {len(record.best)} trials on the Pareto front "
             f"({', '.join(map(str, record.best))})</p>") if len(record.best) > 1 else ""
    rows = "".join(f"<tr data-param=\"{_e(k)}\" data-value=\"{_e(repr(v))}\"><th>{_e(k)}</th>"
                   f"<td class=\"num\">{_e(_short_value(v))}</td></tr>" for k, v in best.params.items())
    run = _link(record, best.run_id, element_id="best-run") if best.run_id else "-"
    return (f"<div class=\"card\" id=\"best\"><h2>Best trial</h2><dl>"
            f"<dt>trial</dt><dd class=\"big\" id=\"best-trial\">{best.number}</dd>{values}<dt>run</dt><dd>{run}</dd>"
            f"</dl>{front}<table id=\"best-params\">{rows}</table></div>")


def _counts_card(record: SweepRecord) -> str:
    shown = ["COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING"]
    rows = "".join(f"<tr><th>{state.lower()}</th><td class=\"num\" id=\"count-{state}\">"
                   f"{record.counts[state]}</td></tr>"
                   for state in shown if state in ("COMPLETE", "PRUNED", "FAIL") or record.counts[state])
    seeded = (f"<tr><th>seeded (warm start, not counted)</th><td class=\"num\" id=\"count-seeded\">"
              f"{len(record.seeded)}</td></tr>") if record.seeded else ""
    return (f"<div class=\"card\" id=\"counts\"><h2>Trials by state</h2><table>{rows}"
            f"<tr><th>finished (of n_trials)</th><td class=\"num\" id=\"count-finished\">"
            f"{record.counts['finished']}</td></tr>"
            f"{seeded}</table></div>")


def _epochs_card(record: SweepRecord) -> str:
    spent, saved = record.epochs_spent, record.epochs_saved
    share = f" ({saved / (spent + saved):.0%} of the epochs the trials could have run)" if spent + saved else ""
    return (f"<div class=\"card\" id=\"epochs\"><h2>Epochs</h2><dl>"
            f"<dt>trained, all trials</dt><dd class=\"big\" id=\"epochs-spent\">{spent}</dd>"
            f"<dt>saved by pruning</dt><dd class=\"big\" id=\"epochs-saved\">{saved}</dd></dl>"
            f"<p class=\"note\">A pruned trial saves its max_epochs minus the epochs it ran{share}. Epochs are "
            "read from each trial's MLflow metric history (step = epoch).</p></div>")


def _figure(key: str, title: str, caption: str, wide: bool, png: str | None, record: SweepRecord) -> str:
    opening = "<figure class=\"wide\">" if wide else "<figure>"
    if png is None:
        why = record.importances_note if key == "importances" else "no trial to draw yet"
        return (f"{opening}<figcaption><b>{_e(title)}</b></figcaption><p class=\"missing\" id=\"plot-{key}-missing\">"
                f"Not drawn: {_e(why or 'nothing to draw')}.</p></figure>")
    return (f"{opening}<img id=\"plot-{key}\" alt=\"{_e(title)}\" src=\"data:image/png;base64,{png}\">"
            f"<figcaption><b>{_e(title)}</b>: {_e(caption)}</figcaption></figure>")


def _seeded_section(record: SweepRecord) -> str:
    if not record.seeded:
        return ""
    warm = record.warm_start or {}
    skipped = len(warm.get("skipped") or {})
    rows = "".join(
        f"<tr data-seeded-trial=\"{s.number}\" data-source-study=\"{_e(s.source_study)}\" "
        f"data-source-trial=\"{s.source_trial}\"><td class=\"num\">{s.number}</td><td>{_e(s.source_study)}</td>"
        f"<td class=\"num\">{s.source_trial}</td><td class=\"num\">{s.values[0]:.4g}</td>"
        f"<td>{_e(_params_text(s.params))}</td><td>{_source_link(record, s.source_run_id)}</td></tr>"
        for s in record.seeded)
    return (f"<section id=\"warm-start\"><h2>Seeded by warm start</h2><p class=\"note\">{len(record.seeded)} "
            f"complete trials of study <code>{_e(warm.get('source') or record.seeded[0].source_study)}</code> seeded "
            f"this study before its first trial ({skipped} did not fit its space). The sampler learns from them; "
            "they are not counted in n_trials, and not ranked above.</p><div class=\"scroll\"><table>"
            f"<tr><th>trial here</th><th>source study</th><th>trial there</th><th>{_e(record.metrics[0])}</th>"
            f"<th>params</th><th>source run</th></tr>{rows}</table></div></section>")


def _trials_section(record: SweepRecord) -> str:
    order = {number: i for i, number in enumerate(record.ranked)}
    trials = sorted(record.trials, key=lambda t: (order.get(t.number, len(order)), t.number))
    keys = sorted({k for t in trials for k in t.params})
    head = "".join(f"<th>{_e(k)}</th>" for k in keys)
    rows = "".join(_trial_row(record, t, keys) for t in trials)
    return (f"<section><h2>Trials</h2><p class=\"note\">Complete trials first, best first; then pruned trials "
            f"(their value is from fewer epochs, so not ranked with the complete ones) and failed ones, by trial number. "
            f"Each run id links to the run in the MLflow UI "
            f"({_e(record.ui_base)}; for a local store start it with <code>sweeplab ui</code>).</p>"
            f"<div class=\"scroll\"><table id=\"trials\"><tr><th>trial</th><th>state</th>"
            f"<th>{_e(record.metrics[0])}</th>"
            f"<th>epochs (run / max)</th>{head}<th>MLflow run</th></tr>{rows}</table></div></section>")


def _trial_row(record: SweepRecord, trial: TrialRow, keys: list[str]) -> str:
    value = f"{trial.values[0]:.4g}" if trial.values else "-"
    epochs = f"{trial.epochs_run} / {trial.max_epochs if trial.max_epochs is not None else '?'}"
    cells = "".join(f"<td class=\"num\">{_e(_short_value(trial.params.get(k, '-')))}</td>" for k in keys)
    run = _link(record, trial.run_id) if trial.run_id else "-"
    best = " class=\"best\"" if record.best and trial.number == record.best[0] else ""
    most = trial.max_epochs if trial.max_epochs is not None else ""
    return (f"<tr{best} data-trial=\"{trial.number}\" data-state=\"{trial.state}\" "
            f"data-run-id=\"{trial.run_id or ''}\" data-epochs=\"{trial.epochs_run}\" data-max-epochs=\"{most}\">"
            f"<td class=\"num\">{trial.number}</td><td>{trial.state.lower()}</td><td class=\"num\">{value}</td>"
            f"<td class=\"num\">{epochs}</td>{cells}<td><code>{run}</code></td></tr>")


def _link(record: SweepRecord, run_id: str, element_id: str = "") -> str:
    ident = f" id=\"{element_id}\"" if element_id else ""
    return f"<a{ident} href=\"{_e(record.run_url(run_id))}\">{_e(run_id)}</a>"


def _source_link(record: SweepRecord, run_id: str | None) -> str:
    """A seeded trial's run, in the source sweep's experiment (when this store holds it)."""
    if not run_id:
        return "-"
    if not record.source_experiment_id:
        return f"<code>{_e(run_id)}</code>"
    url = record.run_url(run_id, record.source_experiment_id)
    return f"<code><a href=\"{_e(url)}\">{_e(run_id)}</a></code>"


def _params_text(params: dict) -> str:
    return " ".join(f"{k.rsplit('.', 1)[-1]}={_short_value(v)}" for k, v in params.items())


def _short_value(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _short(target: str | None) -> str:
    return str(target or "-").rsplit(".", 1)[-1]


def _e(text) -> str:
    return html.escape(str(text), quote=True)
