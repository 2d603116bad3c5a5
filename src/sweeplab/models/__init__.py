"""LightningModules (classifier, regressor) and their backbones; reusable without sweeplab's tracking."""
