"""``ijepa-vit-h14``: the I-JEPA ViT-H/14 image encoder (1280-d, 16x16 patches at 224).

The architecture is timm's ViT-H/14 (``vit_huge_patch14_224``) in I-JEPA's layout:
no class token, final layer norm on the tokens, average pooling — timm registers it
as ``vit_huge_patch14_gap_224``. Weights load from:

* the official checkpoint ``IN1K-vit.h.14-300e.pth.tar`` (a dict with ``encoder``,
  ``target_encoder``, ``predictor``; ``checkpoint_key`` picks the encoder — the
  target encoder by default, which I-JEPA evaluates), from ``path`` or from the
  torch hub checkpoint folder where timm would have put it;
* a timm state dict (``.safetensors`` / ``.pth``);
* a Hugging Face ``IJepaModel`` folder (``facebook/ijepa_vith14_1k``), from ``path``
  or the HF cache, converted to timm names here.

Being a timm ViT, it accepts ``keep`` patch indices (TI-JEPA's context encoding).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from mmalign.encoders import checkpoints, locate
from mmalign.encoders.images import ImageConfig
from mmalign.encoders.pretrained import PretrainedFields, not_found
from mmalign.encoders.timm_image import TimmImageEncoder, create_headless, load_into
from mmalign.errors import ConfigError

ARCH = "vit_huge_patch14_gap_224"
OFFICIAL_URL = "https://dl.fbaipublicfiles.com/ijepa/IN1K-vit.h.14-300e.pth.tar"
OFFICIAL_FILE = "IN1K-vit.h.14-300e.pth.tar"
HUB_ID = "facebook/ijepa_vith14_1k"


class IJepaConfig(ImageConfig, PretrainedFields):
    """I-JEPA ViT-H/14; preprocessing defaults are timm's for these weights."""

    checkpoint_key: Literal["target_encoder", "encoder"] = Field(
        "target_encoder", description="which encoder of an official I-JEPA checkpoint"
    )


def hf_ijepa_to_timm(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename a transformers ``IJepaModel`` state dict to timm ViT names.

    Handles both transformers naming schemes: ``layers.N.attention.{q,k,v,o}_proj``
    (5.x) and ``encoder.layer.N.attention.attention.{query,key,value}`` (4.x).
    """
    state = {re.sub(r"^ijepa\.", "", k): v for k, v in state.items()}
    out: dict[str, Tensor] = {
        "patch_embed.proj.weight": state["embeddings.patch_embeddings.projection.weight"],
        "patch_embed.proj.bias": state["embeddings.patch_embeddings.projection.bias"],
        "pos_embed": state["embeddings.position_embeddings"],
        "norm.weight": state["layernorm.weight"],
        "norm.bias": state["layernorm.bias"],
    }
    names = {
        "new": {
            "prefix": "layers.{i}.",
            "q": "attention.q_proj",
            "k": "attention.k_proj",
            "v": "attention.v_proj",
            "o": "attention.o_proj",
            "fc1": "mlp.fc1",
            "fc2": "mlp.fc2",
        },
        "old": {
            "prefix": "encoder.layer.{i}.",
            "q": "attention.attention.query",
            "k": "attention.attention.key",
            "v": "attention.attention.value",
            "o": "attention.output.dense",
            "fc1": "intermediate.dense",
            "fc2": "output.dense",
        },
    }
    scheme = names["new"] if any(k.startswith("layers.") for k in state) else names["old"]
    depth = 1 + max(int(m.group(1)) for k in state if (m := re.search(r"layers?\.(\d+)\.", k)))
    for i in range(depth):
        src = scheme["prefix"].format(i=i)
        dst = f"blocks.{i}."
        for part in ("weight", "bias"):
            out[f"{dst}attn.qkv.{part}"] = torch.cat(
                [state[f"{src}{scheme[x]}.{part}"] for x in ("q", "k", "v")]
            )
            out[f"{dst}attn.proj.{part}"] = state[f"{src}{scheme['o']}.{part}"]
            out[f"{dst}norm1.{part}"] = state[f"{src}layernorm_before.{part}"]
            out[f"{dst}norm2.{part}"] = state[f"{src}layernorm_after.{part}"]
            out[f"{dst}mlp.fc1.{part}"] = state[f"{src}{scheme['fc1']}.{part}"]
            out[f"{dst}mlp.fc2.{part}"] = state[f"{src}{scheme['fc2']}.{part}"]
    return out


def read_hf_folder(folder: Path) -> dict[str, Tensor]:
    """A transformers IJepa folder as a timm state dict (loaded through transformers, so
    its own checkpoint-name conversions apply)."""
    from transformers import IJepaModel

    from mmalign.encoders.hf_text import check_loading_info

    try:
        model, info = IJepaModel.from_pretrained(
            folder, local_files_only=True, output_loading_info=True
        )
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load the I-JEPA model in {folder}: {exc}") from None
    check_loading_info(info, folder)
    return hf_ijepa_to_timm(model.state_dict())


def is_hf_ijepa_folder(folder: Path) -> bool:
    config = folder / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text()).get("model_type") == "ijepa"
    except ValueError:
        return False


class IJepaViTH14Encoder(TimmImageEncoder):
    """I-JEPA ViT-H/14 (1280-d, 256 patch tokens); accepts ``keep`` patch indices."""

    Config = IJepaConfig
    name = "ijepa-vit-h14"

    @classmethod
    def architecture(cls, device: str = "meta", seed: int = 0) -> nn.Module:
        """The headless ViT-H/14 (build on ``meta`` to inspect it without memory)."""
        return create_headless(ARCH, seed, device=device)

    def __init__(self, config: IJepaConfig | None = None) -> None:
        super().__init__(config)
        cfg: IJepaConfig = self.config
        files: list[Path] = []
        root: Path | None = None
        if cfg.weights == "random":
            model = self.architecture("cpu", cfg.seed)
        else:
            source = self.find_weights(cfg.path)  # before building: a missing file fails fast
            model = self.architecture("meta")
            if source.is_dir():
                state = read_hf_folder(source)
                files, root = locate.hf_weight_files(source) + [source / "config.json"], source
            else:
                raw = checkpoints.read_checkpoint(source)
                state = checkpoints.unwrap(raw, prefer=(cfg.checkpoint_key,))
                files = [source]
            load_into(model, state, str(source))
        self._setup(model, cfg, files, root, trainable=cfg.trainable)

    def find_weights(self, path: str | None) -> Path:
        if path:
            source = Path(path).expanduser()
            if source.is_dir():
                if is_hf_ijepa_folder(source):
                    return source
                files = locate.hf_weight_files(source)
                if len(files) == 1:
                    return files[0]
                raise not_found(
                    self.name,
                    self.modality,
                    [f"{source}/config.json with model_type 'ijepa', or a single weight file"],
                    [f"download {OFFICIAL_URL} and pass the file itself"],
                )
            if not source.is_file():
                raise not_found(
                    self.name,
                    self.modality,
                    [f"{source} (does not exist)"],
                    [f"download {OFFICIAL_URL} and pass its path"],
                )
            return source
        hub = locate.torch_hub_checkpoint(OFFICIAL_FILE)
        if hub is not None:
            return hub
        snap = locate.hf_snapshot(HUB_ID, ["config.json"])
        if snap is not None and locate.hf_weight_files(snap):
            return snap
        raise not_found(
            self.name,
            self.modality,
            [
                str(locate.torch_hub_dir() / "checkpoints" / OFFICIAL_FILE),
                f"{locate.hf_repo_dir(HUB_ID)}/snapshots/*/config.json and model.safetensors",
            ],
            [
                f"download {OFFICIAL_URL} (I-JEPA, IN-1k, 300 epochs) and put it at "
                f"{locate.torch_hub_dir() / 'checkpoints' / OFFICIAL_FILE}",
                "or " + locate.copy_hint(HUB_ID),
            ],
        )
