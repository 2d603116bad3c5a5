"""LightningModules (classifier) and their backbones; reusable without sweeplab's tracking."""
