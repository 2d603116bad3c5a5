"""Where explanations go on a run, and how many test examples `tracking.log_explanations=true` explains."""

from __future__ import annotations

EXAMPLES = 8          # the first test examples explained (`sweeplab explain --examples N` takes any number)
FOLDER = "explanations"
TAG = "sweeplab.explanations"   # on an explained run: what was explained, or why nothing was
