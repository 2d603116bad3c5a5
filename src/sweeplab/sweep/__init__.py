"""Optuna sweeps over Hydra configs, top to bottom (pyproject.toml's import-linter contract keeps that order):

driver.py            `sweeplab sweep`: check, open the study, start the workers, watch, summarise (no torch)
worker/              `sweeplab worker`: the trial loop and the callbacks it hands to run_experiment
join.py, progress.py create or join a sweep and finish it; the live progress line
report/              the summary on the parent MLflow run and the one-page HTML report
warm_start.py        seed a new study with an earlier study's trials
definition.py, study.py   what defines a study; create/load it, count and rank its trials, recover dead ones
settings.py          the `sweep:` node, checked
space.py, placement.py, storage.py, seeded.py, warm_start_value.py, worker_env.py   the values it is made of
"""
