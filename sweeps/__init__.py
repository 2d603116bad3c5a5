"""Sweep definitions (Hydra group `sweep`), shipped as package data."""
