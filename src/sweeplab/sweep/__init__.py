"""Optuna sweeps over Hydra configs: search space, study, pruning, workers."""
