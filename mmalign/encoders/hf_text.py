"""Hugging Face text encoders: the generic ``hf-text`` adapter and its base.

Tokenising happens in ``preprocess`` (per sample, on the CPU, where the runner
can skip a bad sample); ``collate`` pads; ``forward`` runs the transformer.
``tokens`` are the last hidden states, ``mask`` the attention mask, ``pooled`` the
first token's state ("cls") or the mean over real tokens ("mean", the
sentence-transformers pooling). ``layers`` selects hidden states by index into
transformers' ``hidden_states`` tuple: 0 is the embedding output, 1..N the outputs
of transformer layers 1..N, negative indices count from the end — so BERT's layers
9-12 are ``[9, 10, 11, 12]``.

Everything loads from local files only (``local_files_only=True``, the per-call
form of ``HF_HUB_OFFLINE=1``): no download is ever attempted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from mmalign.encoders import locate
from mmalign.encoders.base import EncoderBase
from mmalign.encoders.pooling import masked_mean
from mmalign.errors import ConfigError, DataError
from mmalign.interfaces import Features, StrictModel

Pooling = Literal["cls", "mean"]

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
    "tokenizer.model",
    "merges.txt",
    "vocab.json",
)


class TextConfig(StrictModel):
    """Settings every Hugging Face text encoder shares."""

    pooling: Pooling = "cls"
    layers: list[int] | None = Field(
        None, description="hidden-state indices to return as 'layers' (0 = embeddings)"
    )
    max_length: int = Field(128, ge=2, description="tokens per text, longer texts truncated")
    normalize: bool = Field(False, description="L2-normalise 'pooled'")
    trainable: bool = False


class HFTextConfig(TextConfig):
    """Any Hugging Face text model from a local folder or the HF cache."""

    model: str = Field(
        "", description="a local model folder, or a hub repo id found in the HF cache"
    )


def folder_files(folder: Path, weight_files: Sequence[Path]) -> list[Path]:
    """The files whose contents determine a model folder's features."""
    files = [folder / "config.json", *weight_files]
    files += [folder / name for name in TOKENIZER_FILES if (folder / name).is_file()]
    return [f for f in files if f.is_file()]


def resolve_model_folder(encoder: str, model: str, hub_ids: Sequence[str] = ()) -> Path:
    """A complete local model folder for ``model`` (a path or a hub repo id)."""
    if not model and not hub_ids:
        raise ConfigError(
            f"Encoder '{encoder}' needs `model`: a local model folder or a hub repo id "
            f"already in the HF cache ({locate.hf_cache_dir()})"
        )
    looked: list[str] = []
    if model:
        path = Path(model).expanduser()
        if path.exists() or path.is_absolute() or model.startswith("."):
            problems = locate.check_hf_folder(path, needs_tokenizer=True)
            if not problems:
                return path
            raise locate.WeightsNotFoundError(
                locate.missing_message(
                    encoder,
                    problems,
                    [f"put the model's files (config.json, weights, tokenizer) in {path}"],
                    random_ok=False,
                )
            )
        hub_ids = [model, *hub_ids]
    for hub_id in hub_ids:
        snap = locate.hf_snapshot(hub_id, ["config.json"])
        if snap is None:
            looked.append(f"{locate.hf_repo_dir(hub_id)}/snapshots/*/config.json (absent)")
            continue
        problems = locate.check_hf_folder(snap, needs_tokenizer=True)
        if not problems:
            return snap
        looked += problems
    how = [
        locate.copy_hint(hub_ids[0]),
        "or save the model with `save_pretrained(folder)` (model and tokenizer) and pass "
        "--set encoders.text.config.model=folder",
    ]
    raise locate.WeightsNotFoundError(locate.missing_message(encoder, looked, how, random_ok=False))


def load_folder(folder: Path, trust_remote_code: bool = False) -> tuple[nn.Module, Any]:
    """Model and tokenizer from a local folder, offline."""
    import transformers

    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            folder, local_files_only=True, trust_remote_code=trust_remote_code
        )
        model, info = transformers.AutoModel.from_pretrained(
            folder,
            local_files_only=True,
            trust_remote_code=trust_remote_code,
            output_loading_info=True,
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"cannot load the Hugging Face model in {folder}: {exc}") from None
    check_loading_info(info, folder)
    return model, tokenizer


def check_loading_info(info: dict[str, Any], folder: Path) -> None:
    """Refuse a checkpoint that left weights randomly initialised.

    transformers only warns about missing or mis-shaped weights; features from such a
    model would be silently meaningless. The pooler is exempt: no encoder here uses it
    and sentence-embedding checkpoints often drop it.
    """
    missing = [k for k in info.get("missing_keys", []) if "pooler" not in k]
    mismatched = list(info.get("mismatched_keys", []))
    if missing or mismatched:
        raise ConfigError(
            f"the weights in {folder} do not fit the model its config.json describes: "
            f"missing {sorted(missing)[:5]}, mis-shaped {mismatched[:5]}"
        )


class HFTextEncoderBase(EncoderBase):
    """Shared machinery of the Hugging Face text encoders (not registered itself)."""

    modality = "text"

    def _setup(
        self,
        model: nn.Module,
        tokenizer: Any,
        weight_files: Sequence[Path] = (),
        root: Path | None = None,
    ) -> None:
        cfg: TextConfig = self.config
        self.model = model
        self.tokenizer = tokenizer
        self._weight_files = list(weight_files)
        self._root = root
        n = int(model.config.num_hidden_layers)
        for index in cfg.layers or []:
            if not -(n + 1) <= index <= n:
                raise ConfigError(
                    f"{self.name}: layer {index} does not exist; this model has hidden states "
                    f"0 (embeddings) to {n} (last layer)"
                )
        if tokenizer.pad_token_id is None:
            raise ConfigError(f"{self.name}: the tokenizer has no padding token")
        self.set_trainable(cfg.trainable)

    @classmethod
    def layer_count(cls, config: StrictModel) -> int:
        """One ``layers`` entry per requested hidden-state index."""
        return len(getattr(config, "layers", None) or [])

    @property
    def out_dim(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def num_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)

    def weight_files(self) -> tuple[list[Path], Path | None]:
        return self._weight_files, self._root

    def extra_settings(self) -> dict[str, Any]:
        import transformers

        return {"transformers": transformers.__version__}

    def preprocess(self, raw: Any) -> Tensor:
        if not isinstance(raw, str):
            raise DataError(f"expected a text string, got {type(raw).__name__}")
        if not raw.strip():
            raise DataError("empty text")
        ids = self.tokenizer(raw, truncation=True, max_length=self.config.max_length)["input_ids"]
        return torch.tensor(ids, dtype=torch.long)

    def collate(self, items: Sequence[Tensor]) -> dict[str, Tensor]:
        longest = max(len(x) for x in items)
        ids = torch.full((len(items), longest), int(self.tokenizer.pad_token_id), dtype=torch.long)
        mask = torch.zeros((len(items), longest), dtype=torch.long)
        for i, x in enumerate(items):
            ids[i, : len(x)] = x
            mask[i, : len(x)] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def forward(self, inputs: dict[str, Tensor]) -> Features:
        cfg: TextConfig = self.config
        batch = self.to_device(inputs)
        with self.grad_context():
            out = self.model(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                output_hidden_states=bool(cfg.layers),
                return_dict=True,
            )
        tokens = out.last_hidden_state
        mask = batch["attention_mask"].bool()
        pooled = tokens[:, 0] if cfg.pooling == "cls" else masked_mean(tokens, mask)
        if cfg.normalize:
            pooled = nn.functional.normalize(pooled, dim=-1)
        features: Features = {"pooled": pooled, "tokens": tokens, "mask": mask}
        if cfg.layers:
            features["layers"] = torch.stack([out.hidden_states[i] for i in cfg.layers], dim=1)
        return features


class HFTextEncoder(HFTextEncoderBase):
    """Any Hugging Face text model (local folder or HF cache): tokens, pooled, layers."""

    Config = HFTextConfig
    name = "hf-text"
    locator_fields = frozenset({"model", "trainable"})

    def __init__(self, config: HFTextConfig | None = None) -> None:
        super().__init__(config)
        folder = resolve_model_folder(self.name, self.config.model)
        model, tokenizer = load_folder(folder)
        files = folder_files(folder, locate.hf_weight_files(folder))
        self._setup(model, tokenizer, files, folder)
