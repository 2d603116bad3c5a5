"""`sweeplab report` and the report.html a sweep leaves on its parent run, checked against Optuna and MLflow."""

from __future__ import annotations

import base64
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import run_cli
from finished_sweep import STUDY, finished_sweep, study_in, sweep_runs

PLOTS = ("history", "importances", "parallel", "curves")
VOID = {"img", "meta", "br", "link", "input", "hr"}


class Page(HTMLParser):
    """Every element of an HTML page: tag, attrs, text inside it, parent element."""

    def __init__(self, text: str):
        super().__init__()
        self.elements: list[dict] = []
        self._open: list[dict] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        element = {"tag": tag, "attrs": dict(attrs), "text": "", "parent": self._open[-1] if self._open else None}
        self.elements.append(element)
        if tag not in VOID:
            self._open.append(element)

    def handle_endtag(self, tag):
        while self._open and self._open.pop()["tag"] != tag:
            pass

    def handle_data(self, data):
        for element in self._open:
            element["text"] += data

    def by_id(self, ident: str) -> dict:
        (found,) = [e for e in self.elements if e["attrs"].get("id") == ident]
        return found

    def having(self, attr: str) -> list[dict]:
        return [e for e in self.elements if attr in e["attrs"]]

    def text(self, ident: str) -> str:
        return self.by_id(ident)["text"].strip()


def inside(element: dict, tag: str) -> dict:
    while element["tag"] != tag:
        element = element["parent"]
    return element


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    """The finished sweep, and its report written by `sweeplab report STUDY`, parsed."""
    folder = finished_sweep(tmp_path_factory)
    out = tmp_path_factory.mktemp("report") / "sweep.html"
    done = run_cli("report", STUDY, "--out", str(out), cwd=folder)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"wrote {out}" in done.stdout
    text = out.read_text(encoding="utf-8")
    return folder, text, Page(text)


def expected_epochs(client, trials) -> dict[str, tuple[int, int]]:
    """run id -> (epochs it trained, its trainer.max_epochs), from the MLflow record alone."""
    found = {}
    for run in trials:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val/acc")]
        found[run.info.run_id] = (max(steps) + 1 if steps else 0, int(run.data.params["trainer.max_epochs"]))
    return found


def test_the_report_is_one_file_that_opens_offline(reported):
    _, text, page = reported
    assert not page.having("src") or all(e["tag"] == "img" for e in page.having("src"))   # no <script src>
    assert not [e for e in page.elements if e["tag"] in ("script", "link", "iframe")]
    for name in PLOTS:   # an image per plot, inline
        source = page.by_id(f"plot-{name}")["attrs"]["src"]
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http://" not in "".join(e["attrs"].get("src", "") for e in page.elements)


def test_best_trial_and_counts_match_the_study(reported):
    folder, _, page = reported
    study = study_in(folder)
    best = study.best_trial
    assert page.text("best-trial") == str(best.number)
    assert float(page.by_id("best-value")["attrs"]["data-value"]) == best.values[0]
    shown = {e["attrs"]["data-param"]: e["attrs"]["data-value"] for e in page.having("data-param")}
    assert shown == {key: repr(value) for key, value in best.params.items()}
    states = Counter(t.state.name for t in study.trials)
    for state in ("COMPLETE", "PRUNED", "FAIL"):
        assert page.text(f"count-{state}") == str(states[state])
    assert page.text("count-finished") == str(states["COMPLETE"] + states["PRUNED"])


def test_every_trial_run_is_listed_with_its_mlflow_link(reported):
    folder, _, page = reported
    client, parent, trials = sweep_runs(folder)
    rows = page.having("data-trial")
    assert {(r["attrs"]["data-trial"], r["attrs"]["data-state"], r["attrs"]["data-run-id"]) for r in rows} == \
        {(r.data.tags["optuna.trial_number"], r.data.tags["optuna.state"], r.info.run_id) for r in trials}
    experiment = parent.info.experiment_id
    links = {inside(a, "tr")["attrs"]["data-run-id"]: a["attrs"]["href"]
             for a in page.elements if a["tag"] == "a" and a["parent"]["tag"] == "code"}
    assert links == {r.info.run_id: f"http://127.0.0.1:5000/#/experiments/{experiment}/runs/{r.info.run_id}"
                     "?workflowType=machine_learning" for r in trials}
    # Complete trials first, best first, then the others by number; the note above the table says so.
    assert rows[0]["attrs"]["data-trial"] == page.text("best-trial")
    states = [r["attrs"]["data-state"] for r in rows]
    assert states == sorted(states, key=lambda state: state != "COMPLETE")
    others = [int(r["attrs"]["data-trial"]) for r in rows if r["attrs"]["data-state"] != "COMPLETE"]
    assert others == sorted(others)
    (table,) = [e for e in page.elements if e["attrs"].get("id") == "trials"]
    note = [e for e in page.elements if e["tag"] == "p" and e["parent"] is table["parent"]["parent"]]
    assert "Complete trials first, best first; then pruned trials" in note[0]["text"]


def test_epochs_spent_and_saved_match_the_mlflow_record(reported):
    folder, _, page = reported
    client, _, trials = sweep_runs(folder)
    epochs = expected_epochs(client, trials)
    pruned = [r.info.run_id for r in trials if r.data.tags["optuna.state"] == "PRUNED"]
    spent = sum(run for run, _ in epochs.values())
    saved = sum(epochs[r][1] - epochs[r][0] for r in pruned)
    assert saved > 0   # the sweep's pruned trial stopped before its last epoch
    assert (page.text("epochs-spent"), page.text("epochs-saved")) == (str(spent), str(saved))
    for row in page.having("data-trial"):
        run, most = epochs[row["attrs"]["data-run-id"]]
        assert (row["attrs"]["data-epochs"], row["attrs"]["data-max-epochs"]) == (str(run), str(most))


def test_the_sweep_left_the_same_report_on_its_parent_run(reported, tmp_path):
    folder, _, page = reported
    client, parent, _ = sweep_runs(folder)
    assert "report.html" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    logged = Page(Path(client.download_artifacts(parent.info.run_id, "report.html", str(tmp_path))).read_text())
    for ident in ("best-trial", "count-COMPLETE", "count-PRUNED", "epochs-spent", "epochs-saved"):
        assert logged.text(ident) == page.text(ident)
    assert all(logged.by_id(f"plot-{name}")["attrs"]["src"].startswith("data:image/png") for name in PLOTS)


def test_an_unknown_sweep_exits_2_and_writes_nothing(reported, tmp_path):
    folder = reported[0]
    done = run_cli("report", "no_such_sweep", "--out", str(tmp_path / "r.html"), cwd=folder)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "no sweep named 'no_such_sweep'" in done.stderr
    assert not (tmp_path / "r.html").exists()
