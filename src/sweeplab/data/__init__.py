"""LightningDataModules over real, offline data sets; they know nothing of MLflow or Optuna."""
