"""A tiny randomly initialised BERT checkpoint (config, weights, word-piece tokenizer), written to a folder for tests."""

from __future__ import annotations

import string
from pathlib import Path

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Whole words common in film reviews, every letter (so any word splits into pieces), and ## continuations.
WORDS = ["the", "a", "and", "of", "film", "movie", "fine", "good", "bad", "dull", "story", "is", "it", "not",
         "funny", "great", "boring", "best", "worst", "too", "long", "fresh", "rotten", "characters", "with"]
PIECES = ["##s", "##ing", "##ed", "##ly", "##er"]


def write_tiny_bert(folder: Path, seed: int = 0, extra_words: tuple[str, ...] = ()) -> Path:
    """config.json, model.safetensors, vocab.txt, tokenizer.json and tokenizer_config.json in `folder` (≈ 100 KB);
    `extra_words` are added to the vocabulary (another checkpoint's, whose tokenizer does not fit this one)."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    letters = list(string.ascii_lowercase) + [f"##{c}" for c in string.ascii_lowercase]
    vocab = [*SPECIAL, *string.punctuation, *string.digits, *letters, *WORDS, *PIECES, *extra_words]
    vocab = list(dict.fromkeys(vocab))
    (folder / "vocab.txt").write_text("".join(f"{token}\n" for token in vocab), encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True)
    tokenizer.save_pretrained(str(folder))
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=128, pad_token_id=0)
    BertModel(config).save_pretrained(str(folder))
    return folder


if __name__ == "__main__":
    import sys

    print(write_tiny_bert(Path(sys.argv[1])))
