"""Compose the Hydra config tree and reject bad input early; the config-reading pieces every run shares.

compose.py          compose conf/ (+ --config-dir) with overrides: compose_config, compose_trial, to_yaml
overrides.py        override text that Hydra reads back as the same value
sweep_defaults.py   every `sweep:` key's default (conf/sweep_defaults.yaml), merged under each sweep file
plugin_sweeper.py   sweep files written for the Hydra Optuna sweeper plugin, read into the `sweep:` node
callbacks.py        the Lightning callbacks the `callbacks` group asks for
monitor_check.py    the checkpoint's monitor metric is one the module logs
model_groups.py     which of the optimizer and scheduler groups a model takes
"""

from sweeplab.config.compose import (  # noqa: F401  the names callers use: `from sweeplab.config import ...`
    check_set, compose_config, compose_trial, compose_with_choices, package_config_dir, sweep_dirs, to_yaml,
)
