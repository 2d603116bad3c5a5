"""Pretrained Hugging Face checkpoints on disk: where they are, what they must hold, which weights they carry."""
