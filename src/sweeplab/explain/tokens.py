"""Token-id models: their embedding layer, the pad id, and the network run on given embeddings (for Captum)."""

from __future__ import annotations

import torch
from torch import nn

from sweeplab.data.tokenizer import PAD_ID
from sweeplab.explain.protocols import DecodesTokens, NotExplainable


def embedding_of(net: nn.Module) -> nn.Embedding:
    """The network's first nn.Embedding: the layer that turns its token ids into vectors."""
    for layer in net.modules():
        if isinstance(layer, nn.Embedding):
            return layer
    raise NotExplainable(f"{type(net).__qualname__} takes token ids but has no nn.Embedding layer to attribute "
                         "to (an exported model has none: explain a run that logged its checkpoint)")


def pad_id(embedding: nn.Embedding) -> int:
    """The embedding's own padding index; sweeplab's data modules pad with PAD_ID when it declares none."""
    return PAD_ID if embedding.padding_idx is None else int(embedding.padding_idx)


class OnEmbeddings(nn.Module):
    """`forward(vectors, ids)`: the network on `ids` with its embedding layer's output replaced by `vectors`,
    so that Captum's input attributions (Saliency, GradientShap; Lime and KernelShap through OnWords) apply to
    the embeddings while the ids still give what the network reads from them (padding, lengths);
    LayerIntegratedGradients hooks the same way."""

    def __init__(self, net: nn.Module, embedding: nn.Embedding):
        super().__init__()
        self.net = net
        self.embedding = embedding

    def forward(self, vectors: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        handle = self.embedding.register_forward_hook(lambda layer, args, output: vectors)
        try:
            return self.net(ids)
        finally:
            handle.remove()


class OnWords(nn.Module):
    """`forward(words, ids)`: OnEmbeddings on one text's vectors with those at `positions` (its words)
    replaced by `words` (a batch of them), so that perturbation methods (Lime, KernelShap) see only the
    words as features: the padding keeps its own embedding."""

    def __init__(self, on_embeddings: OnEmbeddings, vectors: torch.Tensor, positions: torch.Tensor):
        super().__init__()
        self.on_embeddings = on_embeddings
        self.vectors = vectors        # 1 x T x D: the text's embedding
        self.positions = positions    # its words' positions

    def forward(self, words: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        vectors = self.vectors.expand(len(words), -1, -1).clone()
        vectors[:, self.positions] = words
        return self.on_embeddings(vectors, ids)


def words_of(ids: torch.Tensor, pad: int, datamodule) -> list[list[tuple[int, str]]]:
    """(position, word) of each text's tokens, padding left out: the data module's words when it can decode
    ids (DecodesTokens), else `#id`."""
    texts = []
    for row in ids:
        positions = (row != pad).nonzero().flatten().tolist()
        words = datamodule.decode(row[positions].unsqueeze(0))[0] if isinstance(datamodule, DecodesTokens) else []
        if len(words) != len(positions):   # a decoder that merges or drops tokens: the ids still line up
            words = [f"#{int(row[p])}" for p in positions]
        texts.append(list(zip(positions, words)))
    return texts
