"""A classifier on a pretrained Hugging Face encoder: the checkpoint's encoder, pooled, dropout, a new linear head."""

from __future__ import annotations

from typing import Callable

from sweeplab.models.classifier import Classifier
from sweeplab.models.hf_encoder import PretrainedEncoder


class PretrainedClassifier(Classifier):
    """`checkpoint`: a Hugging Face checkpoint folder (config.json, weights, tokenizer files) or
    package:NAME of an installed checkpoint package; the data module tokenizes with the same checkpoint.

    Parameter names: `net.0.transformer.*` (`backbone.transformer.*` in finetune.freeze), e.g.
    backbone.transformer.embeddings.* or backbone.transformer.encoder.layer.0.*; the head is `net.2`.
    """

    def __init__(self, checkpoint: str, num_classes: int, pooling: str = "mean", sha256: str | None = None,
                 dropout: float = 0.1, label_smoothing: float = 0.0, l1: float = 0.0,
                 optimizer: Callable | None = None, scheduler: Callable | None = None):
        super().__init__(PretrainedEncoder(checkpoint, pooling, sha256), num_classes, dropout=dropout,
                         label_smoothing=label_smoothing, l1=l1, optimizer=optimizer, scheduler=scheduler)

    def provenance_tags(self) -> dict[str, str]:
        """Which checkpoint the run started from (`sweeplab reproduce` refuses other weights)."""
        encoder = self.backbone
        return {"sweeplab.checkpoint": encoder.checkpoint.written,
                "sweeplab.checkpoint.sha256": encoder.sha256,
                "sweeplab.checkpoint.model_type": str(encoder.transformer.config.model_type)}

    # A frozen encoder's features are reused from fit through test; an exported or explained network
    # computes them (torch.export and Captum need the plain forward).
    def on_fit_start(self) -> None:
        self.backbone.reuse_frozen_features = True

    def on_test_end(self) -> None:
        self.backbone.reuse_frozen_features = False

    def on_fit_end(self) -> None:
        self.backbone.reuse_frozen_features = False

    def on_test_start(self) -> None:
        self.backbone.reuse_frozen_features = True
