"""A pretrained Hugging Face encoder (BERT, DistilBERT, MiniLM, RoBERTa, ...) as a backbone: token ids in, pooled features out."""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from sweeplab.errors import cause_line
from sweeplab.pretrained.checkpoint import Checkpoint, load_tokenizer, locate

POOLINGS = ("mean", "cls")
# Pooled features of a frozen encoder, per (weights digest, pooling): row of ids without padding -> features.
# One per process: a sweep worker's trials encode each text once (see PretrainedEncoder.reuse_frozen_features).
_FROZEN_FEATURES: dict[tuple[str, str], dict[bytes, torch.Tensor]] = {}


class PretrainedEncoder(nn.Module):
    """`transformers.AutoModel` read from a local checkpoint (no network). `forward(ids)`: B x T token ids,
    right-padded with the checkpoint's pad id (the attention mask is `ids != pad_id`) -> B x hidden features,
    the mean of the last layer's states over the real tokens (`mean`) or the first token's state (`cls`).

    `sha256`, when given, must be the weights' digest (`sweeplab reproduce` pins the one its run started from).
    """

    def __init__(self, checkpoint: str, pooling: str = "mean", sha256: str | None = None):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"model.pooling={pooling!r}: must be one of {', '.join(POOLINGS)}")
        found = locate(str(checkpoint))
        self.checkpoint = found
        self.sha256 = found.weights_sha256
        if sha256 and sha256 != self.sha256:
            raise ValueError(f"model.checkpoint={checkpoint}: its weights (sha256 {self.sha256}) are not those the "
                             f"run started from (sha256 {sha256})")
        self.pad_id = _pad_id(found)    # before the weights load: a mismatch is one line, quickly
        self.transformer = _load(found)
        self.pooling = pooling
        self.out_features = int(self.transformer.config.hidden_size)
        # Set by the classifier while it trains and tests (not while exported or explained): a frozen encoder
        # is then a fixed feature extractor whose features are computed once per text (see _frozen_features).
        self.reuse_frozen_features = False
        self._frozen_digest: str | None = None

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self.reuse_frozen_features and self._frozen():
            return self._frozen_features(ids)
        return self._encode(ids)

    def _encode(self, ids: torch.Tensor) -> torch.Tensor:
        mask = ids != self.pad_id
        states = self.transformer(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        if self.pooling == "cls":
            return states[:, 0]
        keep = mask.unsqueeze(-1).to(states.dtype)
        return (states * keep).sum(1) / keep.sum(1).clamp(min=1)

    def _frozen(self) -> bool:
        frozen = not any(p.requires_grad for p in self.transformer.parameters())
        if not frozen:
            self._frozen_digest = None   # unfrozen (finetune.unfreeze_at_epoch): the weights change from now on
        return frozen

    @torch.no_grad()
    def _frozen_features(self, ids: torch.Tensor) -> torch.Tensor:
        """The encoder's features in evaluation mode (no dropout), each text's computed once per process
        while the weights are the same (keyed by their digest, so init_from's weights are not mixed up)."""
        if self._frozen_digest is None:
            self._frozen_digest = _state_digest(self.transformer)
        cache = _FROZEN_FEATURES.setdefault((self._frozen_digest, self.pooling), {})
        rows = [row[row != self.pad_id].cpu().numpy().tobytes() for row in ids]
        missing = [i for i, key in enumerate(rows) if key not in cache]
        if missing:
            was_training = self.transformer.training
            self.transformer.eval()
            try:
                computed = self._encode(ids[missing])
            finally:
                self.transformer.train(was_training)
            for i, features in zip(missing, computed):
                cache[rows[i]] = features
        return torch.stack([cache[key] for key in rows]).to(ids.device)


def _load(checkpoint: Checkpoint) -> nn.Module:
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()   # a bar per load ("Loading weights") says nothing of the run
    try:
        model = AutoModel.from_pretrained(checkpoint.folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(f"model.checkpoint={checkpoint.written}: transformers cannot load it ({cause_line(e)})") from None
    # The pooler (BERT's dense layer on [CLS] for next-sentence prediction) is not used: left in, its
    # parameters would get no gradient, which DDP refuses.
    if isinstance(getattr(model, "pooler", None), nn.Module):
        model.pooler = None
    # from_pretrained returns the model in evaluation mode, and Lightning keeps each module's mode: without
    # this, fine-tuning would run without the encoder's dropout.
    return model.train()


def _pad_id(checkpoint: Checkpoint) -> int:
    """The padding id, the same in the model and its tokenizer; ValueError when the two do not belong together."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(checkpoint.folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(f"model.checkpoint={checkpoint.written}: config.json cannot be read ({cause_line(e)})") from None
    tokenizer = load_tokenizer(checkpoint)
    if len(tokenizer) > config.vocab_size:
        raise ValueError(f"model.checkpoint={checkpoint.written}: the tokenizer does not match the model: it has "
                         f"{len(tokenizer)} tokens, the model's embedding {config.vocab_size} rows")
    if config.pad_token_id is not None and config.pad_token_id != tokenizer.pad_token_id:
        raise ValueError(f"model.checkpoint={checkpoint.written}: the tokenizer does not match the model: its "
                         f"padding id is {tokenizer.pad_token_id}, the model's (config.json pad_token_id) "
                         f"{config.pad_token_id}")
    return int(tokenizer.pad_token_id)


def _state_digest(module: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
