"""What the report's learning curves draw and how rankings are worded, on records built by hand."""

from __future__ import annotations

from sweeplab.compare import top_phrase
from sweeplab.sweep.report.data import SweepRecord, TrialRow
from sweeplab.sweep.report.figures import curve_trials


def trial(number: int, state: str, epochs: int, value: float | None) -> TrialRow:
    return TrialRow(number, state, [value] if value is not None else None, {}, {},
                    curve=[(epoch, 0.5 + 0.01 * epoch) for epoch in range(epochs)])


def test_a_trial_pruned_after_one_epoch_is_not_drawn_as_a_curve():
    trials = [trial(0, "COMPLETE", 4, 0.9), trial(1, "PRUNED", 1, None), trial(2, "PRUNED", 2, None),
              trial(3, "COMPLETE", 4, 0.95)]
    record = SweepRecord("s", None, "", ["val/acc"], ["maximize"], trials, [], best=[3], ranked=[3, 0],
                         counts={}, importances=None)
    others, top = curve_trials(record)
    assert [t.number for t in top] == [3, 0]      # the complete trials, best first
    assert [t.number for t in others] == [2]      # pruned after two epochs: a curve; after one: a point, left out


def test_a_ranking_of_one_reads_top_run():
    assert (top_phrase(1, "run"), top_phrase(2, "run"), top_phrase(5, "trial")) == ("top run", "top 2 runs",
                                                                                 "top 5 trials")
