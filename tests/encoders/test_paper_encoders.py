"""The papers' encoders by name: sizes, loading from local copies, missing weights."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file

from mmalign.encoders import ijepa, named_text
from mmalign.encoders.ijepa import IJepaConfig, IJepaViTH14Encoder, hf_ijepa_to_timm
from mmalign.encoders.locate import WeightsNotFoundError
from mmalign.encoders.named_text import (
    BertBaseConfig,
    BertBaseUncasedEncoder,
    GteBaseConfig,
    GteBaseEncoder,
    gte_config_from_new,
)
from mmalign.encoders.resnet50 import ResNet50Config, ResNet50Encoder
from mmalign.errors import ConfigError, MMAlignError


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def vit_h14_parameters() -> int:
    """ViT-H/14 at 224 px without class token or head, counted from its definition."""
    d, depth, mlp, patches = 1280, 32, 5120, (224 // 14) ** 2
    block = (d * 3 * d + 3 * d) + (d * d + d) + (d * mlp + mlp) + (mlp * d + d) + 4 * d
    return (3 * 14 * 14 * d + d) + patches * d + depth * block + 2 * d


# ------------------------------------------------------------------ full-size sizes


def test_full_size_parameter_counts() -> None:
    vit = count(IJepaViTH14Encoder.architecture("meta"))
    assert vit == vit_h14_parameters()
    assert round((vit + 1280 * 1000 + 1000) / 1e6) == 632  # the published ViT-H/14 size
    resnet = ResNet50Encoder.architecture("meta")
    assert count(resnet) + 2048 * 1000 + 1000 == count(torchvision.models.resnet50())
    assert round(count(torchvision.models.resnet50()) / 1e5) == 256  # 25.6M
    assert count(BertBaseUncasedEncoder.architecture("meta")) == 109_482_240
    gte = GteBaseEncoder.architecture("meta")
    assert round(count(gte) / 1e6) == 137  # gte-base-en-v1.5: 137M
    assert gte.config.num_hidden_layers == 12 and gte.config.hidden_size == 768


def test_bert_random_gives_layers_9_to_12(monkeypatch: pytest.MonkeyPatch) -> None:
    """The random path with the embedded tokenizer; the network is shrunk in width only
    (the full-size architecture is counted above)."""
    from transformers import BertConfig, BertModel

    small = BertConfig(hidden_size=32, num_attention_heads=2, intermediate_size=64)
    monkeypatch.setattr(
        BertBaseUncasedEncoder, "random_model", classmethod(lambda cls: BertModel(small))
    )
    enc = BertBaseUncasedEncoder(BertBaseConfig(weights="random", layers=[9, 10, 11, 12]))
    assert enc.num_layers == 12
    ids = enc.preprocess("Hello, World")
    assert ids.tolist() == [101, 7592, 1010, 2088, 102]  # bert-base-uncased WordPiece ids
    feats = enc(enc.collate([ids, enc.preprocess("a much longer sentence than that")]))
    assert feats["layers"].shape == (2, 4, feats["tokens"].shape[1], 32)
    torch.testing.assert_close(feats["layers"][:, 3], feats["tokens"])
    torch.testing.assert_close(feats["pooled"], feats["tokens"][:, 0])


# ----------------------------------------------------------------- missing weights


@pytest.mark.parametrize(
    "cls, expected",
    [
        (IJepaViTH14Encoder, ["IN1K-vit.h.14-300e.pth.tar", "models--facebook--ijepa_vith14_1k"]),
        (GteBaseEncoder, ["models--Alibaba-NLP--gte-base-en-v1.5"]),
        (ResNet50Encoder, ["resnet50-0676ba61.pth", "models--timm--resnet50.tv_in1k"]),
        (BertBaseUncasedEncoder, ["models--google-bert--bert-base-uncased"]),
    ],
)
def test_missing_weights_name_the_files_and_the_fixes(
    cls: type, expected: list[str], isolated_caches: Path
) -> None:
    with pytest.raises(WeightsNotFoundError) as err:
        cls()
    message = str(err.value)
    assert isinstance(err.value, MMAlignError) and isinstance(err.value, ConfigError)
    for item in expected:
        assert item in message
    assert str(isolated_caches) in message  # the real locations looked at
    assert f"encoders.{cls.modality}.config.path=" in message
    assert f"encoders.{cls.modality}.config.weights=random" in message


def test_a_wrong_path_is_reported_as_such(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="nope.pth"):
        ResNet50Encoder(ResNet50Config(path=str(tmp_path / "nope.pth")))
    with pytest.raises(WeightsNotFoundError, match="config.json"):
        BertBaseUncasedEncoder(BertBaseConfig(path=str(tmp_path)))
    with pytest.raises(WeightsNotFoundError, match="nope.pth.tar"):
        IJepaViTH14Encoder(IJepaConfig(path=str(tmp_path / "nope.pth.tar")))


# ---------------------------------------------------------------------- ResNet-50


def test_resnet50_from_the_torch_hub_cache(isolated_caches: Path) -> None:
    torch.manual_seed(0)
    tv = torchvision.models.resnet50().eval()
    folder = isolated_caches / "torch-home" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(tv.state_dict(), folder / "resnet50-0676ba61.pth")
    enc = ResNet50Encoder()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        body = torch.nn.Sequential(*list(tv.children())[:-2])
        expected = body(x)
    feats = enc(x)
    assert feats["tokens"].shape == (1, 4, 2048)
    # channels-last convolutions round differently: compare at float32 noise level
    tokens = expected.flatten(2).transpose(1, 2)
    torch.testing.assert_close(feats["tokens"], tokens, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(feats["pooled"], expected.mean((2, 3)), rtol=1e-4, atol=1e-3)
    assert enc.frozen and enc.out_dim == 2048


# --------------------------------------------------------------------------- BERT


def test_bert_from_the_hf_cache(tiny_bert: Path, isolated_caches: Path) -> None:
    repo = isolated_caches / "hf-hub" / "models--google-bert--bert-base-uncased"
    shutil.copytree(tiny_bert, repo / "snapshots" / "86b5e0934494bd15c9632b12f734a8a67f723594")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("86b5e0934494bd15c9632b12f734a8a67f723594")
    enc = BertBaseUncasedEncoder(BertBaseConfig(layers=[3, 4]))
    feats = enc(enc.collate([enc.preprocess("the cat sat")]))
    assert feats["layers"].shape[:2] == (1, 2) and enc.out_dim == 32


# ---------------------------------------------------------------------------- GTE

TINY_NEW = {
    "model_type": "new",
    "architectures": ["NewModel"],
    "auto_map": {"AutoModel": "Alibaba-NLP/new-impl--modeling.NewModel"},
    "vocab_size": 30528,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 48,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.0,
    "max_position_embeddings": 512,
    "type_vocab_size": 0,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
    "position_embedding_type": "rope",
    "rope_theta": 500000,
    "rope_scaling": {"type": "ntk", "factor": 2.0},
}


def to_new_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers GteModel names -> the custom-code checkpoint names (the inverse of
    transformers' conversion), to fake an original gte-base-en-v1.5 checkpoint."""
    out: dict[str, torch.Tensor] = {}
    layers = {int(m.group(1)) for k in state if (m := re.match(r"layers\.(\d+)\.", k))}
    for k, v in state.items():
        if not k.startswith("layers."):
            out[k] = v
    for i in layers:
        src, dst = f"layers.{i}.", f"encoder.layer.{i}."
        for part in ("weight", "bias"):
            out[f"{dst}attention.qkv_proj.{part}"] = torch.cat(
                [state[f"{src}self_attn.{x}_proj.{part}"] for x in "qkv"]
            )
            out[f"{dst}attention.o_proj.{part}"] = state[f"{src}self_attn.o_proj.{part}"]
            out[f"{dst}attn_ln.{part}"] = state[f"{src}post_attention_layernorm.{part}"]
            out[f"{dst}mlp_ln.{part}"] = state[f"{src}post_mlp_layernorm.{part}"]
        out[f"{dst}mlp.up_gate_proj.weight"] = torch.cat(
            [state[f"{src}mlp.up_proj.weight"], state[f"{src}mlp.gate_proj.weight"]]
        )
        out[f"{dst}mlp.down_proj.weight"] = state[f"{src}mlp.down_proj.weight"]
        out[f"{dst}mlp.down_proj.bias"] = state[f"{src}mlp.down_proj.bias"]
    return out


def test_gte_ntk_rope_matches_the_custom_code_formula() -> None:
    from transformers import GteModel

    model = GteModel(gte_config_from_new(TINY_NEW))
    d, theta, f = 16, 500000.0, 2.0
    expected = 1.0 / ((theta * f) ** (torch.arange(0, d, 2).float() / d)) / f ** (2 / d)
    torch.testing.assert_close(model.rotary_emb.inv_freq, expected)


def test_gte_loads_an_original_custom_code_folder(tmp_path: Path) -> None:
    from transformers import GteModel

    from mmalign.encoders.minilm import model_folder

    torch.manual_seed(0)
    reference = GteModel(gte_config_from_new(TINY_NEW)).eval()
    folder = tmp_path / "gte-base-en-v1.5"
    folder.mkdir()
    state = {k: v.contiguous() for k, v in reference.state_dict().items()}
    save_file(to_new_names(state), str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(TINY_NEW))
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(model_folder() / name, folder / name)
    enc = GteBaseEncoder(GteBaseConfig(path=str(folder)))
    batch = enc.collate([enc.preprocess("what is the capital of France?")])
    with torch.no_grad():
        expected = reference(**batch).last_hidden_state
    feats = enc(batch)
    torch.testing.assert_close(feats["tokens"], expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(feats["pooled"], expected[:, 0])


def test_gte_random_uses_the_published_config(monkeypatch: pytest.MonkeyPatch) -> None:
    small = {
        **named_text.GTE_BASE_EN_V15,
        "hidden_size": 32,
        "num_attention_heads": 2,
        "num_hidden_layers": 2,
        "intermediate_size": 48,
    }
    monkeypatch.setattr(named_text, "GTE_BASE_EN_V15", small)
    enc = GteBaseEncoder(GteBaseConfig(weights="random", layers=[1, 2]))
    feats = enc(enc.collate([enc.preprocess("hello world")]))
    assert feats["layers"].shape == (1, 2, 4, 32)
    assert enc.model.embeddings.token_type_embeddings is None  # type_vocab_size 0, as published


# ------------------------------------------------------------------------- I-JEPA


def tiny_vit(device: str = "cpu", seed: int = 0) -> torch.nn.Module:
    """ViT-H/14's registered layout at toy size (same class, same pretrained config)."""
    torch.manual_seed(seed)
    with torch.device(device):
        return timm.create_model(
            ijepa.ARCH, num_classes=0, embed_dim=32, depth=2, num_heads=2, img_size=56
        ).eval()


@pytest.fixture
def toy_ijepa(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        IJepaViTH14Encoder, "architecture", classmethod(lambda cls, d="meta", s=0: tiny_vit(d, s))
    )


def test_ijepa_official_checkpoint_picks_the_target_encoder(
    toy_ijepa: None, tmp_path: Path
) -> None:
    context, target = tiny_vit(seed=1), tiny_vit(seed=2)
    checkpoint = {
        "encoder": {f"module.{k}": v for k, v in context.state_dict().items()},
        "target_encoder": {f"module.{k}": v for k, v in target.state_dict().items()},
        "predictor": {"module.mask_token": torch.zeros(1, 1, 8)},
        "epoch": 300,
        "lr": 0.001,
    }
    path = tmp_path / "IN1K-vit.h.14-300e.pth.tar"
    torch.save(checkpoint, path)
    x = torch.randn(1, 3, 56, 56)
    for key, source in (("target_encoder", target), ("encoder", context)):
        enc = IJepaViTH14Encoder(IJepaConfig(path=str(path), checkpoint_key=key))
        with torch.no_grad():
            torch.testing.assert_close(enc(x)["tokens"], source.forward_features(x))
    keep = torch.tensor([[0, 5, 9]])
    assert enc(x, keep=keep)["tokens"].shape == (1, 3, 32)
    assert enc.supports_keep and enc.num_patches == 16


def test_ijepa_from_the_torch_hub_cache(toy_ijepa: None, isolated_caches: Path) -> None:
    folder = isolated_caches / "torch-home" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    source = tiny_vit(seed=4)
    torch.save({"target_encoder": source.state_dict()}, folder / ijepa.OFFICIAL_FILE)
    enc = IJepaViTH14Encoder()
    torch.testing.assert_close(enc.model.pos_embed, source.pos_embed)


def test_ijepa_hf_folder_converts_to_timm(tmp_path: Path) -> None:
    from transformers import IJepaConfig as HFIJepaConfig
    from transformers import IJepaModel

    torch.manual_seed(0)
    hf = IJepaModel(
        HFIJepaConfig(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=128,
            image_size=56,
            patch_size=14,
        )
    ).eval()
    vit = tiny_vit()
    vit.load_state_dict(hf_ijepa_to_timm(hf.state_dict()))
    x = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        expected = hf(pixel_values=x).last_hidden_state
        torch.testing.assert_close(vit.forward_features(x), expected, rtol=1e-4, atol=1e-5)
    folder = tmp_path / "ijepa_vith14_1k"
    hf.save_pretrained(folder)
    assert ijepa.is_hf_ijepa_folder(folder)
    state = ijepa.read_hf_folder(folder)
    torch.testing.assert_close(state["blocks.1.attn.qkv.weight"], vit.blocks[1].attn.qkv.weight)


@pytest.mark.slow
def test_ijepa_random_full_size_encodes_with_keep() -> None:
    """Builds the real 631M-parameter ViT-H/14 (about 2.5 GB): run with -m slow."""
    enc = IJepaViTH14Encoder(IJepaConfig(weights="random"))
    x = torch.randn(1, 3, 224, 224)
    feats = enc(x)
    assert feats["tokens"].shape == (1, 256, 1280) and enc.out_dim == 1280
    keep = torch.arange(0, 256, 4).unsqueeze(0)
    assert enc(x, keep=keep)["tokens"].shape == (1, 64, 1280)
