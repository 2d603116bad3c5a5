"""MLflow records of runs: store, params, provenance tags, batched metrics, model export."""
