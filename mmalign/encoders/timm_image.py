"""Image encoders built on timm models: the generic ``timm`` adapter and its base.

A timm model is created headless (``num_classes=0``). Its final feature map or
token sequence becomes ``tokens`` (CNN maps flattened row-major to ``[B, H*W, C]``;
ViT prefix tokens dropped so that token ``i`` is patch ``i``) and its own pooling
(``forward_head(pre_logits=True)``) becomes ``pooled``. ViTs accept ``keep``
patch indices (see :mod:`mmalign.encoders.vit`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn

from mmalign.encoders import checkpoints, locate
from mmalign.encoders.base import EncoderBase, seeded
from mmalign.encoders.images import ImageConfig, ImageTransform, load_image, resolve_transform
from mmalign.encoders.vit import is_vit, vit_tokens
from mmalign.errors import ConfigError
from mmalign.interfaces import Features

StateDict = dict[str, Tensor]


class TimmConfig(ImageConfig):
    """A timm image model by name, with weights from nowhere, a file or the HF cache."""

    model: str = Field("resnet18", description="timm model name, e.g. vit_base_patch16_224")
    weights: str = Field(
        "random",
        description='"random", "hf-cache" (the timm weights in the Hugging Face cache), '
        "or a local checkpoint file / model folder",
    )
    seed: int = Field(0, description="seed of a random initialisation")
    trainable: bool = False


def create_headless(
    name: str, seed: int, device: str | torch.device = "cpu", **kwargs: Any
) -> nn.Module:
    """A timm model without classifier, randomly initialised from ``seed``."""
    import timm

    try:
        with seeded(seed), torch.device(device):
            return timm.create_model(name, pretrained=False, num_classes=0, **kwargs)
    except RuntimeError as exc:
        if "Unknown model" in str(exc):
            from mmalign.suggest import did_you_mean

            raise ConfigError(
                f"timm has no model '{name}'.{did_you_mean(name, timm.list_models())}"
            ) from None
        raise


def filter_fn(model: nn.Module) -> Callable[[StateDict, nn.Module], StateDict] | None:
    """The model family's own checkpoint converter (resamples ViT position embeddings,
    converts foreign layouts), when its timm module has one."""
    module = sys.modules.get(type(model).__module__)
    fn = getattr(module, "checkpoint_filter_fn", None)
    return fn if callable(fn) else None


def load_into(model: nn.Module, state_dict: Mapping[str, Tensor], source: str) -> None:
    """Load checkpoint tensors into a headless timm model, strictly.

    The classifier is dropped (the model has none); every other tensor must fit, so
    a checkpoint of the wrong architecture fails loudly instead of loading half.
    """
    sd: StateDict = dict(state_dict)
    fn = filter_fn(model)
    if fn is not None:
        sd = fn(sd, model)
    heads = model.pretrained_cfg.get("classifier") or ()
    for head in (heads,) if isinstance(heads, str) else heads:
        sd.pop(f"{head}.weight", None)
        sd.pop(f"{head}.bias", None)
    checkpoints.load_strict(model, sd, source)


def checkpoint_file(path: Path) -> Path:
    """A checkpoint file, or the weight file inside a timm / Hugging Face model folder."""
    if path.is_dir():
        files = locate.hf_weight_files(path)
        if len(files) != 1:
            raise locate.WeightsNotFoundError(
                f"{path} is a folder without a single model.safetensors or pytorch_model.bin"
            )
        return files[0]
    if not path.is_file():
        raise locate.WeightsNotFoundError(f"checkpoint {path} does not exist")
    return path


def hf_cache_checkpoint(name: str) -> Path | None:
    """The cached timm weights of ``name`` (``timm/<model>.<tag>`` on the hub, or the
    torch hub checkpoint folder for weights timm fetches by URL)."""
    import timm

    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None:
        return None
    hub_id = getattr(cfg, "hf_hub_id", None)
    if hub_id:
        for filename in ("model.safetensors", "pytorch_model.bin"):
            snap = locate.hf_snapshot(hub_id, [filename])
            if snap is not None:
                return snap / filename
    url = getattr(cfg, "url", None)
    if url:
        return locate.torch_hub_checkpoint(url.rsplit("/", 1)[-1])
    return None


class TimmImageEncoder(EncoderBase):
    """Shared machinery of the timm-backed image encoders (not registered itself)."""

    modality = "image"

    def _setup(
        self,
        model: nn.Module,
        config: ImageConfig,
        weight_files: Sequence[Path] = (),
        root: Path | None = None,
        trainable: bool = False,
    ) -> None:
        import timm

        self.model = model
        data_cfg = timm.data.resolve_data_config({}, model=model)
        self.transform: ImageTransform = resolve_transform(config, data_cfg)
        self._weight_files = list(weight_files)
        self._root = root
        if not is_vit(model):
            # convolutions run about 1.5x faster channels-last on CPUs (oneDNN), and
            # as fast or faster on GPUs; the features are the same up to rounding
            model.to(memory_format=torch.channels_last)
        self.set_trainable(trainable)

    @property
    def out_dim(self) -> int:
        return int(self.model.num_features)

    @property
    def supports_keep(self) -> bool:
        """Whether ``forward(..., keep=...)`` can encode a subset of patches."""
        return is_vit(self.model)

    @property
    def num_patches(self) -> int:
        """Patches per image (ViTs), the range of valid ``keep`` indices."""
        if not self.supports_keep:
            raise ConfigError(f"{self.name}: {type(self.model).__name__} has no patch grid")
        return int(self.model.patch_embed.num_patches)

    def weight_files(self) -> tuple[list[Path], Path | None]:
        return self._weight_files, self._root

    def extra_settings(self) -> dict[str, Any]:
        import timm

        return {"transform": self.transform.settings(), "timm": timm.__version__}

    def preprocess(self, raw: Any) -> Tensor:
        return self.transform(load_image(raw))

    def collate(self, items: Sequence[Tensor]) -> Tensor:
        return torch.stack(list(items))

    def forward(self, inputs: Tensor, keep: Tensor | None = None) -> Features:
        x = self.to_device(inputs)
        with self.grad_context():
            if is_vit(self.model):
                states = vit_tokens(self.model, x, keep)
                pooled = self.model.forward_head(states, pre_logits=True)
                tokens = states[:, self.model.num_prefix_tokens :]
            else:
                if keep is not None:
                    raise ConfigError(
                        f"{self.name}: keep (patch selection) needs a ViT, "
                        f"not {type(self.model).__name__}"
                    )
                fmap = self.model.forward_features(x.contiguous(memory_format=torch.channels_last))
                pooled = self.model.forward_head(fmap, pre_logits=True)
                if fmap.ndim == 4:
                    if getattr(self.model, "output_fmt", "NCHW") == "NHWC":
                        fmap = fmap.permute(0, 3, 1, 2)
                    tokens = fmap.flatten(2).transpose(1, 2)
                else:
                    tokens = fmap
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        return {"pooled": pooled, "tokens": tokens, "mask": mask}


class TimmEncoder(TimmImageEncoder):
    """Any timm image model by name: random, a local checkpoint, or the HF cache."""

    Config = TimmConfig
    name = "timm"
    locator_fields = frozenset({"weights", "trainable"})

    def __init__(self, config: TimmConfig | None = None) -> None:
        import timm

        super().__init__(config)
        cfg: TimmConfig = self.config
        kwargs: dict[str, Any] = {}
        pretrained = timm.models.get_pretrained_cfg(cfg.model)
        if cfg.image_size and pretrained is not None and pretrained.fixed_input_size:
            kwargs["img_size"] = cfg.image_size  # ViTs size their position table by it
        files: list[Path] = []
        if cfg.weights == "random":
            model = create_headless(cfg.model, cfg.seed, **kwargs)
        else:
            if cfg.weights == "hf-cache":
                file = hf_cache_checkpoint(cfg.model)
                if file is None:
                    raise locate.WeightsNotFoundError(self._missing(pretrained))
            else:
                file = checkpoint_file(Path(cfg.weights).expanduser())
            # built on the CPU, not on meta: some timm models compute non-persistent
            # buffers at construction that no checkpoint carries
            model = create_headless(cfg.model, cfg.seed, **kwargs)
            load_into(model, checkpoints.unwrap(checkpoints.read_checkpoint(file)), str(file))
            files = [file]
        self._setup(model, cfg, files, trainable=cfg.trainable)

    def _missing(self, pretrained: Any) -> str:
        name = self.config.model
        hub_id = getattr(pretrained, "hf_hub_id", None) if pretrained else None
        url = getattr(pretrained, "url", None) if pretrained else None
        looked, how = [], []
        if hub_id:
            looked.append(f"{locate.hf_repo_dir(hub_id)}/snapshots/*/model.safetensors")
            how.append(locate.copy_hint(hub_id))
        if url:
            file = url.rsplit("/", 1)[-1]
            looked.append(str(locate.torch_hub_dir() / "checkpoints" / file))
            how.append(f"download {url} and put it at {locate.torch_hub_dir() / 'checkpoints'}/")
        if not looked:
            looked.append(f"(timm lists no pretrained weights for '{name}')")
        how.append(
            "or pass the checkpoint file directly: "
            "--set encoders.image.config.weights=/path/to/file"
        )
        return locate.missing_message(f"timm:{name}", looked, how, modality=self.modality)
