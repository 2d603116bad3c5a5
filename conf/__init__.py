"""The Hydra config tree, shipped as package data so an installed sweeplab finds it."""
