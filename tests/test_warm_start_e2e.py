"""`sweep.warm_start` end to end: a new sweep starts with an earlier sweep's best trials that fit its space."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from conftest import run_cli
from finished_sweep import ARGS, STUDY, finished_sweep, journal, study_in, sweep_runs

NEW = "digits_warm"
TOP_K = 2


def narrowed_dropout(source: optuna.Study) -> float:
    """An upper bound for model.dropout that leaves out exactly one complete trial of the source: the one
    with the largest dropout."""
    dropouts = sorted(t.params["model.dropout"] for t in source.get_trials(states=(TrialState.COMPLETE,)))
    return round((dropouts[-1] + dropouts[-2]) / 2, 6)


def warm_args(parent_run_id: str, bound: float) -> list[str]:
    return ["sweep=digits_cnn", "trainer=smoke", f"sweep.study_name={NEW}", "sweep.n_trials=1",
            "tracking.log_model=false", "tracking.log_checkpoint=false",
            f"sweep.warm_start={parent_run_id},{TOP_K}", f"sweep.params.model.dropout=interval(0.0, {bound})"]


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    """The finished sweep, and a second one warm-started from its parent run id with a narrower dropout."""
    folder = finished_sweep(tmp_path_factory)
    source = study_in(folder)
    bound = narrowed_dropout(source)
    parent = sweep_runs(folder)[1]
    done = run_cli("sweep", *warm_args(parent.info.run_id, bound), cwd=folder)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder, source, parent, bound, done


def test_the_new_study_starts_with_the_best_trials_that_fit(warm):
    folder, source, _, bound, done = warm
    complete = sorted(source.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: -t.values[0])
    outside = [t for t in complete if t.params["model.dropout"] > bound]
    fitting = [t for t in complete if t.params["model.dropout"] <= bound]
    assert len(outside) == 1 and len(fitting) > TOP_K   # both the skip and the top_k cut are exercised
    study = study_in(folder, NEW)
    seeded = [t for t in study.trials if "sweeplab.seeded_from" in t.user_attrs]
    assert {t.user_attrs["sweeplab.seeded_trial"] for t in seeded} == {t.number for t in fitting[:TOP_K]}
    by_source = {t.number: t for t in source.trials}
    for trial in seeded:
        original = by_source[trial.user_attrs["sweeplab.seeded_trial"]]
        assert trial.user_attrs["sweeplab.seeded_from"] == STUDY and trial.state == TrialState.COMPLETE
        assert trial.params == original.params and trial.values == original.values
        assert trial.intermediate_values == original.intermediate_values
        assert trial.distributions["model.dropout"].high == bound   # the new space's, not the source's
    assert outside[0].number not in {t.user_attrs["sweeplab.seeded_trial"] for t in seeded}
    # Seeded first, before any trial of the sweep's own, which n_trials (1) counts alone.
    own = [t for t in study.trials if "sweeplab.seeded_from" not in t.user_attrs]
    assert [t.number for t in seeded] == list(range(TOP_K)) and [t.number for t in own] == [TOP_K]
    assert own[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert f"seeded {TOP_K} trial(s) of study {STUDY}" in done.stdout and "skipped 1" in done.stdout


def test_the_tpe_sampler_learns_from_the_seeded_trials(warm):
    folder = warm[0]
    memory = optuna.storages.InMemoryStorage()   # a copy: asking for a trial must not touch the sweep's study
    optuna.copy_study(from_study_name=NEW, from_storage=journal(folder), to_storage=memory)
    finished = len(optuna.load_study(study_name=NEW, storage=memory).get_trials(
        states=(TrialState.COMPLETE, TrialState.PRUNED)))
    assert finished == TOP_K + 1

    def model_based(startup: int) -> dict:
        """TPE's multivariate params for the next trial: {} while it has seen fewer than `startup` trials."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(n_startup_trials=startup, multivariate=True, seed=0)
        return optuna.load_study(study_name=NEW, storage=memory, sampler=sampler).ask().relative_params

    # TPE counts the seeded trials among those it models, over the whole space (their distributions are the
    # new space's, so the intersection search space keeps every param).
    assert set(model_based(finished)) == set(study_in(folder, NEW).trials[-1].params)
    assert model_based(finished + 1) == {}


def test_the_parent_run_records_the_warm_start_and_counts_only_its_own_trials(warm, tmp_path):
    folder, source, source_parent, _, _ = warm
    client, parent, trials = sweep_runs(folder, NEW)
    params = parent.data.params
    assert params["warm_start.source"] == STUDY and params["warm_start.source_run"] == source_parent.info.run_id
    assert (params["warm_start.seeded"], params["warm_start.skipped"], params["warm_start.top_k"]) == \
        (str(TOP_K), "1", str(TOP_K))
    record = json.loads(parent.data.tags["sweeplab.warm_start"])
    assert sorted(record["seeded"].values()) == sorted(
        t.user_attrs["sweeplab.seeded_trial"] for t in study_in(folder, NEW).trials[:TOP_K])
    assert "model.dropout" in next(iter(record["skipped"].values()))
    counted = json.loads(parent.data.tags["sweeplab.trials"])
    assert counted["finished"] == 1 and counted["seeded"] == TOP_K
    assert len(trials) == 1 and trials[0].data.tags["optuna.trial_number"] == str(TOP_K)   # no run for a seeded one
    assert parent.data.tags.get("sweeplab.best_trial") in (None, str(TOP_K))   # a seeded trial is never the best
    # report.html shows them as seeded, apart from the sweep's own trials.
    page = Path(client.download_artifacts(parent.info.run_id, "report.html", str(tmp_path))).read_text(encoding="utf-8")
    assert page.count("data-seeded-trial=") == TOP_K and page.count("data-trial=") == 1


def test_a_rerun_resumes_without_seeding_again(warm):
    folder, _, parent, bound, _ = warm
    before = len(study_in(folder, NEW).trials)
    again = run_cli("sweep", *warm_args(parent.info.run_id, bound), cwd=folder)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "sweep.warm_start ignored: study digits_warm exists already" in again.stdout
    assert len(study_in(folder, NEW).trials) == before


@pytest.mark.parametrize("value, message", [
    ("no_such_study", "sweep.warm_start=no_such_study: no study 'no_such_study' in "),
    (f"{STUDY},0", f"sweep.warm_start={STUDY},0: top_k '0' must be an integer of at least 1"),
])
def test_bad_warm_start_exits_2_before_anything_is_written(warm, value, message):
    folder = warm[0]
    studies_before = optuna.get_all_study_names(journal(folder))
    done = run_cli("sweep", "sweep=digits_cnn", "trainer=smoke", "sweep.study_name=digits_bad",
                   f"sweep.warm_start={value}", cwd=folder)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and message in done.stderr, done.stderr
    assert optuna.get_all_study_names(journal(folder)) == studies_before
    client = sweep_runs(folder)[0]
    assert client.get_experiment_by_name("sweep-digits_bad") is None


def test_a_trial_reports_after_n_epochs_as_step_n(warm):
    """Step n is the n-th epoch's sweep.metric (MLflow's step n - 1), so pruners count epochs."""
    folder = warm[0]
    client, _, runs = sweep_runs(folder)
    run_of = {r.data.tags["optuna.trial_number"]: r.info.run_id for r in runs}
    complete = study_in(folder).get_trials(states=(TrialState.COMPLETE,))
    assert complete
    for trial in complete:
        history = sorted(client.get_metric_history(run_of[str(trial.number)], "val/acc"), key=lambda m: m.step)
        assert trial.intermediate_values == {m.step + 1: m.value for m in history}
        assert min(trial.intermediate_values) == 1


def older_study(folder: Path, name: str) -> optuna.Study:
    """A copy of the finished study as sweeplab recorded it before steps were epochs completed: the definition
    without its 'steps' piece, and each value at the epoch index (one step earlier)."""
    storage = journal(folder)
    source = study_in(folder)
    old = optuna.create_study(study_name=name, storage=storage, directions=source.directions)
    recorded = json.loads(source.user_attrs["sweeplab.definition"])
    del recorded["steps"]
    for key, value in source.user_attrs.items():
        old.set_user_attr(key, json.dumps(recorded) if key == "sweeplab.definition" else value)
    old.add_trials([optuna.trial.create_trial(
        state=t.state, values=t.values, params=t.params, distributions=t.distributions, user_attrs=t.user_attrs,
        intermediate_values={step - 1: value for step, value in t.intermediate_values.items()})
        for t in source.trials if t.state.is_finished()])
    return old


def test_an_older_study_is_not_resumed_as_the_same_sweep(warm):
    folder = warm[0]
    older_study(folder, "digits_older")
    done = run_cli("sweep", *ARGS, "sweep.study_name=digits_older", cwd=folder)
    assert done.returncode == 2
    assert "steps epoch_index → epochs_completed" in done.stderr and done.stderr.strip().count("\n") == 0, done.stderr


def test_a_warm_start_from_an_older_study_moves_its_values_to_epochs_completed(warm):
    folder = warm[0]
    older_study(folder, "digits_older_source")
    done = run_cli("sweep", *ARGS, "sweep.study_name=digits_from_older", "sweep.n_trials=1",
                   "sweep.warm_start=digits_older_source,1", cwd=folder)
    assert done.returncode == 0, done.stderr[-3000:]
    (seeded,) = [t for t in study_in(folder, "digits_from_older").trials if "sweeplab.seeded_from" in t.user_attrs]
    original = study_in(folder).trials[seeded.user_attrs["sweeplab.seeded_trial"]]
    assert seeded.intermediate_values == original.intermediate_values
