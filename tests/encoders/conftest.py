"""Encoder tests run with an isolated MMALIGN_HOME and empty model caches.

Nothing here may reach a real Hugging Face or torch hub cache: tests that need
one build it under ``tmp_path``.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MMALIGN_HOME", str(tmp_path / "mmalign-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-hub"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


WORDS = [
    "the",
    "a",
    "cat",
    "dog",
    "sat",
    "on",
    "mat",
    "happy",
    "sad",
    "sun",
    "rain",
    "is",
    "was",
    "very",
    "good",
    "bad",
]


def make_tiny_bert(folder: Path, layers: int = 4, seed: int = 0) -> Path:
    """A 4-layer, 32-wide BERT with its own small WordPiece vocabulary, saved like a
    Hugging Face model folder (config.json, model.safetensors, tokenizer files)."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *letters]
    vocab += [f"##{c}" for c in letters] + [".", ",", "!", "#"]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True).save_pretrained(
        folder
    )
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture
def tiny_bert(tmp_path: Path) -> Path:
    return make_tiny_bert(tmp_path / "tiny-bert")
