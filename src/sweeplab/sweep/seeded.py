"""Trials a warm start copied into a study (seeded), told apart from the trials the sweep ran itself."""

from __future__ import annotations

from collections.abc import Sequence

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

# User attrs of a seeded trial. Optuna sees it as any COMPLETE trial (its sampler and pruner learn from
# it); sweeplab counts, ranks and reports only the trials without these attrs as the sweep's own.
FROM_STUDY_ATTR = "sweeplab.seeded_from"       # the study it was copied from
FROM_TRIAL_ATTR = "sweeplab.seeded_trial"      # its number there
FROM_RUN_ATTR = "sweeplab.seeded_run_id"       # its MLflow run, when the source sweep recorded one


def is_seeded(trial: FrozenTrial) -> bool:
    return FROM_STUDY_ATTR in trial.user_attrs


def own_trials(study: optuna.Study, states: Sequence[TrialState] | None = None) -> list[FrozenTrial]:
    """The trials this sweep ran (seeded ones left out), in trial-number order."""
    return [t for t in study.get_trials(deepcopy=False, states=states) if not is_seeded(t)]


def seeded_trials(study: optuna.Study) -> list[FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False) if is_seeded(t)]


def best_of(trials: Sequence[FrozenTrial], directions: Sequence[StudyDirection]) -> list[FrozenTrial]:
    """The best of complete `trials` as Optuna picks them from a whole study: one objective, the best value
    (the earliest trial on a tie); several, the Pareto front."""
    signs = [1.0 if d == StudyDirection.MAXIMIZE else -1.0 for d in directions]
    score = [(t, [s * v for s, v in zip(signs, t.values)]) for t in trials]
    if len(directions) == 1:
        return [max(score, key=lambda pair: (pair[1][0], -pair[0].number))[0]] if score else []

    def dominates(a: list[float], b: list[float]) -> bool:
        return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))

    return [t for t, mine in score if not any(dominates(other, mine) for _, other in score)]
