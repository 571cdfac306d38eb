"""The generic Hugging Face text adapter, on tiny local model folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from mmalign.encoders.hf_text import HFTextConfig, HFTextEncoder
from mmalign.encoders.locate import WeightsNotFoundError
from mmalign.errors import ConfigError, DataError

TEXTS = ["the cat sat on the mat", "sun", "a very happy dog!"]


def reference(folder: Path, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor, tuple]:
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**enc, output_hidden_states=True)
    return out.last_hidden_state, enc["attention_mask"].bool(), out.hidden_states


def test_matches_the_model_run_directly(tiny_bert: Path) -> None:
    enc = HFTextEncoder(HFTextConfig(model=str(tiny_bert), layers=[1, 2, 3, 4]))
    feats = enc(enc.collate([enc.preprocess(t) for t in TEXTS]))
    tokens, mask, hidden = reference(tiny_bert, TEXTS)
    torch.testing.assert_close(feats["tokens"], tokens, rtol=1e-4, atol=1e-5)
    assert torch.equal(feats["mask"], mask)
    torch.testing.assert_close(feats["pooled"], tokens[:, 0])  # cls pooling by default
    assert feats["layers"].shape == (3, 4, tokens.shape[1], 32)
    for k, layer in enumerate([1, 2, 3, 4]):
        torch.testing.assert_close(feats["layers"][:, k], hidden[layer], rtol=1e-4, atol=1e-5)
    assert enc.out_dim == 32 and enc.frozen and not enc.training


def test_mean_pooling_ignores_padding(tiny_bert: Path) -> None:
    enc = HFTextEncoder(HFTextConfig(model=str(tiny_bert), pooling="mean"))
    feats = enc(enc.collate([enc.preprocess(t) for t in TEXTS]))
    n = int(feats["mask"][1].sum())
    assert n < feats["tokens"].shape[1]
    torch.testing.assert_close(feats["pooled"][1], feats["tokens"][1, :n].mean(0))


def test_negative_layer_indices_count_from_the_end(tiny_bert: Path) -> None:
    enc = HFTextEncoder(HFTextConfig(model=str(tiny_bert), layers=[-1, 0]))
    feats = enc(enc.collate([enc.preprocess("the cat")]))
    torch.testing.assert_close(feats["layers"][:, 0], feats["tokens"])
    with pytest.raises(ConfigError, match="hidden states 0 \\(embeddings\\) to 4"):
        HFTextEncoder(HFTextConfig(model=str(tiny_bert), layers=[5]))


def test_loads_from_the_hf_cache_by_repo_id(tiny_bert: Path, isolated_caches: Path) -> None:
    repo = isolated_caches / "hf-hub" / "models--someone--tiny-bert"
    shutil.copytree(tiny_bert, repo / "snapshots" / "abc123")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123\n")
    enc = HFTextEncoder(HFTextConfig(model="someone/tiny-bert"))
    tokens, _, _ = reference(tiny_bert, ["the dog"])
    torch.testing.assert_close(enc(enc.collate([enc.preprocess("the dog")]))["tokens"], tokens)


def test_missing_repo_names_the_cache_path(isolated_caches: Path) -> None:
    with pytest.raises(WeightsNotFoundError) as err:
        HFTextEncoder(HFTextConfig(model="someone/absent-model"))
    assert "models--someone--absent-model" in str(err.value)
    assert "huggingface-cli download someone/absent-model" in str(err.value)


def test_incomplete_folder_names_the_missing_file(tiny_bert: Path) -> None:
    (tiny_bert / "model.safetensors").unlink()
    with pytest.raises(WeightsNotFoundError, match="model.safetensors"):
        HFTextEncoder(HFTextConfig(model=str(tiny_bert)))
    with pytest.raises(ConfigError, match="needs `model`"):
        HFTextEncoder(HFTextConfig())


def test_truncation_and_bad_texts(tiny_bert: Path) -> None:
    enc = HFTextEncoder(HFTextConfig(model=str(tiny_bert), max_length=6))
    assert len(enc.preprocess("the cat sat on the mat the dog sat")) == 6
    with pytest.raises(DataError, match="empty"):
        enc.preprocess("  ")


def test_trainable_text_encoder_gets_gradients(tiny_bert: Path) -> None:
    enc = HFTextEncoder(HFTextConfig(model=str(tiny_bert), trainable=True))
    assert not enc.frozen and enc.training
    enc(enc.collate([enc.preprocess("the cat")]))["pooled"].sum().backward()
    grads = [p.grad for p in enc.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)


def test_weights_that_do_not_fit_the_config_are_refused(tiny_bert: Path) -> None:
    """transformers would only warn and leave layers 5-6 random; that must be an error."""
    import json

    config = json.loads((tiny_bert / "config.json").read_text())
    config["num_hidden_layers"] = 6
    (tiny_bert / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="do not fit"):
        HFTextEncoder(HFTextConfig(model=str(tiny_bert)))
