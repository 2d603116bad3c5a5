"""Attributions of a run's model with Captum, logged under `explanations/` (`sweeplab explain`, tracking)."""
