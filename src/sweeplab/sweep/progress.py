"""The live progress line of a sweep: finished, pruned, failed, running, best so far, time left."""

from __future__ import annotations

import sys
import time

import optuna

from sweeplab.sweep.settings import SweepSettings
from sweeplab.sweep.study import best_trials, counts


class Progress:
    def __init__(self, settings: SweepSettings, stream=sys.stdout):
        self.settings = settings
        self.stream = stream
        self.started = time.monotonic()
        self.finished_at_start: int | None = None
        self.last = ""
        self.tty = stream.isatty()

    def update(self, study: optuna.Study) -> None:
        line = self.line(study)
        # A terminal line is redrawn as the clock ticks; a log gets a line only when trials change.
        changed = line.rsplit(" · ", 1)[0] != self.last.rsplit(" · ", 1)[0]
        if self.tty:
            self.stream.write("\r" + line.ljust(110)[:160])
        elif changed:
            self.stream.write(line + "\n")
        self.last = line
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.last:
            self.stream.write("\n")
            self.stream.flush()

    def line(self, study: optuna.Study) -> str:
        found = counts(study)
        if self.finished_at_start is None:
            self.finished_at_start = found["finished"]
        done_here = found["finished"] - self.finished_at_start
        elapsed = time.monotonic() - self.started
        left = self.settings.n_trials - found["finished"]
        eta = f", ~{_clock(elapsed / done_here * left)} left" if done_here and left > 0 else ""
        best = best_trials(study)
        shown = (f" · best {self.settings.metrics[0]} {best[0].values[0]:.4g} (trial {best[0].number})"
                 if best else "")
        return (f"[{found['finished']}/{self.settings.n_trials}] complete {found['COMPLETE']} · pruned "
                f"{found['PRUNED']} · failed {found['FAIL']} · running {found['RUNNING']}{shown} · "
                f"{_clock(elapsed)}{eta}")


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
