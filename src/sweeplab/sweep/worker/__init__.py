"""A sweep worker's trial loop: loop.py pulls trials from the shared study and runs each through
run_experiment with the callbacks of this package (objective.py: what the trial reports; pruning.py:
report, prune, refuse NaN), recording Optuna heartbeats itself (heartbeat.py).

Nothing here is imported by the driver (it imports no torch); what the two share is sweep/worker_env.py.
"""
