"""Transfer learning: start a run from other weights (finetune.init_from), freeze parts, scale the backbone's lr."""
