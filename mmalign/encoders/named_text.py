"""The papers' text encoders by name: ``bert-base-uncased`` and ``gte-base``.

Both load a Hugging Face model folder from ``path`` or the HF cache, offline.
``weights="random"`` builds the full-size architecture from its published
configuration without any file; the tokenizer then comes from the embedded
all-MiniLM-L6-v2 package, whose WordPiece vocabulary is bert-base-uncased's
(30,522 uncased tokens) — the vocabulary gte-base-en-v1.5 uses too (its 30,528
embedding rows are that vocabulary padded to a multiple of 64).

gte-base-en-v1.5 was published as custom code (``model_type: "new"``, needing
``trust_remote_code``). transformers now ships the architecture as ``gte``; a
"new" folder is loaded into it by translating the config (see
:func:`gte_config_from_new`) while transformers renames the weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from pydantic import Field
from torch import nn

from mmalign.encoders import locate
from mmalign.encoders.base import seeded
from mmalign.encoders.hf_text import (
    HFTextEncoderBase,
    Pooling,
    TextConfig,
    check_loading_info,
    folder_files,
    load_folder,
)
from mmalign.encoders.pretrained import PretrainedFields, not_found
from mmalign.errors import ConfigError

#: the published config.json of Alibaba-NLP/gte-base-en-v1.5 (architecture fields)
GTE_BASE_EN_V15: dict[str, Any] = {
    "model_type": "new",
    "vocab_size": 30528,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.0,
    "max_position_embeddings": 8192,
    "type_vocab_size": 0,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
    "position_embedding_type": "rope",
    "rope_theta": 500000,
    "rope_scaling": {"type": "ntk", "factor": 2.0},
}


class NamedTextConfig(TextConfig, PretrainedFields):
    """A named text encoder: pretrained from a folder / the HF cache, or random."""


class BertBaseConfig(NamedTextConfig):
    """bert-base-uncased; SPP-SCL reads [CLS] and tokens of layers 9-12 (``layers``)."""

    pooling: Pooling = "cls"
    max_length: int = Field(128, ge=2, le=512)


class GteBaseConfig(NamedTextConfig):
    """gte-base-en-v1.5: [CLS] pooling, as its model card does."""

    pooling: Pooling = "cls"
    max_length: int = Field(512, ge=2, le=8192)


def embedded_tokenizer() -> Any:
    """The bert-base-uncased WordPiece tokenizer shipped with the MiniLM package."""
    from transformers import AutoTokenizer

    from mmalign.encoders.minilm import model_folder

    return AutoTokenizer.from_pretrained(model_folder(), local_files_only=True)


def gte_config_from_new(raw: dict[str, Any]) -> Any:
    """A transformers ``GteConfig`` equivalent to a custom-code "new" config.

    The custom code applies fixed NTK scaling whenever ``rope_scaling`` is set: base
    ``theta * f`` and every inverse frequency divided by ``f ** (2 / head_dim)``. That
    is transformers' "linear" rope with ``rope_theta = theta * f`` and ``factor =
    f ** (2 / head_dim)``.
    """
    from transformers import GteConfig

    if raw.get("position_embedding_type", "rope") != "rope":
        raise ConfigError("gte-base: only rotary position embeddings are supported")
    if raw.get("logn_attention_scale") or raw.get("logn_attention_clip1"):
        raise ConfigError("gte-base: logn attention scaling is not supported")
    head_dim = raw["hidden_size"] // raw["num_attention_heads"]
    theta = float(raw.get("rope_theta", 10000.0))
    scaling = raw.get("rope_scaling")
    if not scaling:
        rope: dict[str, Any] = {"rope_type": "default", "rope_theta": theta}
    elif scaling.get("type") == "ntk" and scaling.get("mixed_b") is None:
        f = float(scaling["factor"])
        rope = {"rope_type": "linear", "rope_theta": theta * f, "factor": f ** (2 / head_dim)}
    else:
        raise ConfigError(f"gte-base: unsupported rope_scaling {scaling}")
    keys = (
        "vocab_size",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "hidden_act",
        "hidden_dropout_prob",
        "attention_probs_dropout_prob",
        "max_position_embeddings",
        "type_vocab_size",
        "layer_norm_eps",
        "pad_token_id",
    )
    return GteConfig(**{k: raw[k] for k in keys if k in raw}, rope_parameters=rope)


class NamedTextEncoder(HFTextEncoderBase):
    """Shared loading of the named text encoders (not registered itself)."""

    Config = NamedTextConfig
    #: hub repo ids looked up in the HF cache, in order
    hub_ids: tuple[str, ...] = ()

    @classmethod
    def random_model(cls) -> nn.Module:
        """The full-size architecture with random weights (built on the current device)."""
        raise NotImplementedError(f"{cls.__name__} must define random_model()")

    @classmethod
    def architecture(cls, device: str = "meta") -> nn.Module:
        """The full-size network (build on ``meta`` to inspect it without memory)."""
        with torch.device(device):
            return cls.random_model()

    def load_pretrained(self, folder: Path) -> tuple[nn.Module, Any]:
        return load_folder(folder)

    def __init__(self, config: NamedTextConfig | None = None) -> None:
        super().__init__(config)
        cfg: NamedTextConfig = self.config
        if cfg.weights == "random":
            with seeded(cfg.seed):
                model = self.random_model()
            self._setup(model, embedded_tokenizer())
            return
        folder = self.find_folder(cfg.path)
        model, tokenizer = self.load_pretrained(folder)
        self._setup(model, tokenizer, folder_files(folder, locate.hf_weight_files(folder)), folder)

    def find_folder(self, path: str | None) -> Path:
        if path:
            folder = Path(path).expanduser()
            problems = locate.check_hf_folder(folder, needs_tokenizer=True)
            if not problems:
                return folder
            raise not_found(
                self.name,
                self.modality,
                problems,
                [f"copy the model folder of {self.hub_ids[0]} (config, weights, tokenizer)"],
            )
        looked: list[str] = []
        for hub_id in self.hub_ids:
            snap = locate.hf_snapshot(hub_id, ["config.json"])
            if snap is None:
                looked.append(f"{locate.hf_repo_dir(hub_id)}/snapshots/*/config.json")
                continue
            problems = locate.check_hf_folder(snap, needs_tokenizer=True)
            if not problems:
                return snap
            looked += problems
        raise not_found(
            self.name,
            self.modality,
            looked,
            [locate.copy_hint(self.hub_ids[0])],
        )


class BertBaseUncasedEncoder(NamedTextEncoder):
    """bert-base-uncased (768-d, 12 layers): tokens, [CLS] and any hidden layers."""

    Config = BertBaseConfig
    name = "bert-base-uncased"
    hub_ids = ("google-bert/bert-base-uncased", "bert-base-uncased")

    @classmethod
    def random_model(cls) -> nn.Module:
        from transformers import BertConfig, BertModel

        return BertModel(BertConfig())  # BertConfig's defaults are bert-base-uncased's


class GteBaseEncoder(NamedTextEncoder):
    """gte-base-en-v1.5 (768-d, 12 layers, RoPE, 8192 tokens), [CLS] pooled."""

    Config = GteBaseConfig
    name = "gte-base"
    hub_ids = ("Alibaba-NLP/gte-base-en-v1.5",)

    @classmethod
    def random_model(cls) -> nn.Module:
        from transformers import GteModel

        return GteModel(gte_config_from_new(GTE_BASE_EN_V15))

    def load_pretrained(self, folder: Path) -> tuple[nn.Module, Any]:
        raw = json.loads((folder / "config.json").read_text())
        if raw.get("model_type") != "new":
            return load_folder(folder)  # already a transformers-native "gte" folder
        from transformers import AutoTokenizer, GteModel

        try:
            model, info = GteModel.from_pretrained(
                folder,
                config=gte_config_from_new(raw),
                local_files_only=True,
                output_loading_info=True,
            )
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load gte-base from {folder}: {exc}") from None
        check_loading_info(info, folder)
        return model, tokenizer
