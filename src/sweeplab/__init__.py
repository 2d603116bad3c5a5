"""sweeplab: Hydra-composed Lightning experiments, Optuna sweeps, MLflow records."""

__version__ = "0.1.0"
