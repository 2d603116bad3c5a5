"""What a sweep's HTML report shows, gathered from its Optuna study and its trials' MLflow runs."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field

import optuna
from mlflow.entities import Run
from optuna.trial import FrozenTrial, TrialState

from sweeplab.errors import ConfigError
from sweeplab.sweep import seeded
from sweeplab.sweep.storage import open_storage, parse_storage
from sweeplab.sweep.study import best_trials, counts, ranked
from sweeplab.sweep.warm_start import TAG as WARM_START_TAG
from sweeplab.sweep.warm_start_value import RUN_ID
from sweeplab.tracking import links, lookup

TOP_CURVES = 5   # learning curves drawn in colour: the best complete trials
STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")


@dataclass
class TrialRow:
    """One of the sweep's own trials, with what its MLflow run recorded."""

    number: int
    state: str
    values: list[float] | None
    params: dict
    distributions: dict
    run_id: str | None = None
    max_epochs: int | None = None               # the run's trainer.max_epochs param
    curve: list[tuple[int, float]] = field(default_factory=list)   # (epoch, sweep.metric) from MLflow

    @property
    def epochs_run(self) -> int:
        """Epochs trained: the last epoch with a value of sweep.metric, plus one (MLflow's step is the epoch)."""
        return max(step for step, _ in self.curve) + 1 if self.curve else 0

    @property
    def epochs_saved(self) -> int:
        """Epochs pruning spared: those a pruned trial did not run (its max_epochs - epochs run)."""
        if self.state != "PRUNED" or self.max_epochs is None:
            return 0
        return max(self.max_epochs - self.epochs_run, 0)


@dataclass
class SeededRow:
    """A trial a warm start copied into the study: where it came from."""

    number: int
    source_study: str
    source_trial: int
    source_run_id: str | None
    values: list[float]
    params: dict


@dataclass
class SweepRecord:
    study_name: str
    parent: Run
    ui_base: str                     # where the MLflow UI for this store is (links.ui_base)
    metrics: list[str]
    directions: list[str]
    trials: list[TrialRow]           # the sweep's own trials, by number
    seeded: list[SeededRow]
    best: list[int]                  # the best trial's number (the Pareto front's, multi-objective)
    ranked: list[int]                # complete trials, best first
    counts: dict[str, int]
    importances: dict[str, float] | None
    importances_note: str = ""       # why there are no importances
    warm_start: dict | None = None   # the parent run's warm start record (warm_start.TAG)
    source_experiment_id: str | None = None   # the warm start's source sweep's MLflow experiment, when here

    def run_url(self, run_id: str, experiment_id: str | None = None) -> str:
        return links.run_url(self.ui_base, experiment_id or self.parent.info.experiment_id, run_id)

    def trial(self, number: int) -> TrialRow:
        return next(t for t in self.trials if t.number == number)

    @property
    def epochs_spent(self) -> int:
        return sum(t.epochs_run for t in self.trials)

    @property
    def epochs_saved(self) -> int:
        return sum(t.epochs_saved for t in self.trials)


def find_sweep(client, target: str, storage_url: str | None = None) -> tuple[Run, optuna.Study]:
    """SWEEP (a sweep's parent run id, or its study name) -> its parent run and its Optuna study, read from
    the storage the parent run names (or `storage_url`, e.g. when the recorded URL hides a password)."""
    if RUN_ID.fullmatch(target):
        parent = lookup.get_run(client, target)
        if not lookup.is_sweep(parent):
            raise ConfigError(f"run {target} is not a sweep's parent run; give a sweep's parent run id or study name")
    else:
        experiment = client.get_experiment_by_name(f"sweep-{target}")
        found = client.search_runs([experiment.experiment_id], "tags.`sweeplab.role` = 'sweep'",
                                   order_by=["attributes.start_time DESC"], max_results=1) if experiment else []
        if not found:
            raise ConfigError(f"no sweep named {target!r} in {client.tracking_uri}; give a study name or a sweep's "
                              "parent run id (`sweeplab sweep` prints it)")
        parent = found[0]
    name = parent.data.tags["optuna.study_name"]
    url = storage_url or parent.data.tags.get("optuna.storage")
    if not url or "***" in url:
        raise ConfigError(f"sweep {name}: its storage URL is not recorded in full (a password is hidden); "
                          "pass it with --storage URL")
    spec = parse_storage(url)
    if spec.local_file is not None and not spec.local_file.exists():
        raise ConfigError(f"sweep {name}: its study's storage {url} does not exist here; pass --storage URL")
    try:
        study = optuna.load_study(study_name=name, storage=open_storage(spec))
    except KeyError:
        raise ConfigError(f"sweep {name}: no study '{name}' in {url}; pass --storage URL") from None
    return parent, study


def collect(client, parent: Run, study: optuna.Study) -> SweepRecord:
    """Everything the report shows: the study's trials joined to their MLflow runs (one metric-history
    read a run), counts, the best trial, importances, and the warm start's seeded trials."""
    metrics = parent.data.params.get("sweep.metric", "val/acc").split(",")
    runs = _trial_runs(client, parent)
    rows = []
    for trial in seeded.own_trials(study):
        run = runs.get(trial.number)
        row = TrialRow(trial.number, trial.state.name, trial.values, dict(trial.params), dict(trial.distributions))
        if run is not None:
            row.run_id = run.info.run_id
            epochs = run.data.params.get("trainer.max_epochs")
            row.max_epochs = int(epochs) if epochs and epochs.isdigit() else None
            row.curve = _curve(client, run, metrics[0], row.max_epochs)
            if row.max_epochs is not None:   # a cross-validation trial trains every fold for max_epochs
                row.max_epochs *= int(run.data.tags.get("sweeplab.folds") or 1)
        rows.append(row)
    importances, note = _importances(study)
    warm = json.loads(parent.data.tags.get(WARM_START_TAG) or "null")
    return SweepRecord(
        study_name=study.study_name, parent=parent, ui_base=links.ui_base(client.tracking_uri), metrics=metrics,
        directions=[d.name.lower() for d in study.directions], trials=rows,
        seeded=[_seeded_row(t) for t in seeded.seeded_trials(study)],
        best=[t.number for t in best_trials(study)], ranked=[t.number for t in ranked(study)],
        counts={**{s: 0 for s in STATES}, **counts(study)}, importances=importances, importances_note=note,
        warm_start=warm, source_experiment_id=_experiment_of(client, (warm or {}).get("source_run")))


def _curve(client, run: Run, metric: str, max_epochs: int | None) -> list[tuple[int, float]]:
    """(step, value) of the trial's metric per epoch. A cross-validation trial's values are in its fold
    runs (nested under it): fold k's epoch e (MLflow's step) is put at k * max_epochs + e."""
    if "sweeplab.folds" not in run.data.tags:
        runs = [(0, run)]
    else:
        folds = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'")
        runs = [(int(f.data.tags.get("sweeplab.fold", 0)) * (max_epochs or 0), f) for f in folds]
    return sorted((offset + m.step, m.value) for offset, each in runs
                  for m in client.get_metric_history(each.info.run_id, metric) if math.isfinite(m.value))


def _trial_runs(client, parent: Run) -> dict[int, Run]:
    """Trial number -> its MLflow run under the parent (the latest, should a number have two)."""
    found = {}
    for run in client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
                                  order_by=["attributes.start_time ASC"]):
        number = run.data.tags.get("optuna.trial_number", "")
        if number.isdigit():
            found[int(number)] = run
    return found


def _experiment_of(client, run_id: str | None) -> str | None:
    from mlflow.exceptions import MlflowException

    if not run_id:
        return None
    try:
        return client.get_run(run_id).info.experiment_id
    except MlflowException:   # the source sweep recorded its runs in another store
        return None


def _importances(study: optuna.Study) -> tuple[dict[str, float] | None, str]:
    """fANOVA importances of the params for the first objective over the sweep's own complete trials
    (seeded, reproducible), or None and why not."""
    own = seeded.own_trials(study, states=(TrialState.COMPLETE,))
    if len(own) < 2:
        return None, f"needs at least 2 complete trials ({len(own)} here)"
    view = study
    if seeded.seeded_trials(study):   # a study of the own trials only: importances of what this sweep ran
        view = _in_memory(study.directions, own)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(
                view, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0), target=lambda t: t.values[0])
    except (ValueError, RuntimeError) as e:   # e.g. no param varies across the complete trials
        return None, str(e).splitlines()[0]
    return dict(found), ""


def _in_memory(directions, trials: list[FrozenTrial]) -> optuna.Study:
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)   # not "A new study created in memory" on the terminal
    try:
        view = optuna.create_study(directions=directions)
    finally:
        optuna.logging.set_verbosity(verbosity)
    view.add_trials(trials)
    return view


def _seeded_row(trial: FrozenTrial) -> SeededRow:
    attrs = trial.user_attrs
    return SeededRow(trial.number, attrs[seeded.FROM_STUDY_ATTR], int(attrs[seeded.FROM_TRIAL_ATTR]),
                     attrs.get(seeded.FROM_RUN_ATTR), list(trial.values), dict(trial.params))
