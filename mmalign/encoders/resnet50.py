"""``resnet50``: ImageNet ResNet-50 (2048-d final map, 7x7 tokens at 224 px).

Built as timm ``resnet50``, whose parameter names are torchvision's, so both a
torchvision checkpoint (``resnet50-0676ba61.pth``, IMAGENET1K_V1, the one the
papers' era used) and timm's hub weights load strictly. Preprocessing is the
torchvision evaluation transform: resize 256 (bilinear), centre crop 224, ImageNet
mean and std.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from torch import nn

from mmalign.encoders import checkpoints, locate
from mmalign.encoders.images import ImageConfig, Interpolation
from mmalign.encoders.pretrained import PretrainedFields, not_found
from mmalign.encoders.timm_image import (
    TimmImageEncoder,
    checkpoint_file,
    create_headless,
    load_into,
)

ARCH = "resnet50"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: torchvision weight files, as torch hub names them in $TORCH_HOME/hub/checkpoints
TORCHVISION_FILES = {
    "resnet50-0676ba61.pth": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    "resnet50-11ad3fa6.pth": "https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
}
#: timm's copies on the Hugging Face hub (tv_in1k is torchvision's V1 weights)
HUB_IDS = ("timm/resnet50.tv_in1k", "timm/resnet50.a1_in1k")


class ResNet50Config(ImageConfig, PretrainedFields):
    """ResNet-50 with torchvision's evaluation preprocessing."""

    image_size: int = Field(224, ge=32)
    crop_pct: float = Field(0.875, gt=0, le=1)
    interpolation: Interpolation = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


class ResNet50Encoder(TimmImageEncoder):
    """ImageNet ResNet-50 (2048-d): local path, torch hub / HF cache, or random."""

    Config = ResNet50Config
    name = "resnet50"

    @classmethod
    def architecture(cls, device: str = "meta", seed: int = 0) -> nn.Module:
        """The headless network (build on ``meta`` to inspect it without memory)."""
        return create_headless(ARCH, seed, device=device)

    def __init__(self, config: ResNet50Config | None = None) -> None:
        super().__init__(config)
        cfg: ResNet50Config = self.config
        files: list[Path] = []
        if cfg.weights == "pretrained":
            file = self.find_weights(cfg.path)  # before building: a missing file fails fast
            model = self.architecture("meta")
            load_into(model, checkpoints.unwrap(checkpoints.read_checkpoint(file)), str(file))
            files = [file]
        else:
            model = self.architecture("cpu", cfg.seed)
        self._setup(model, cfg, files, trainable=cfg.trainable)

    def find_weights(self, path: str | None) -> Path:
        if path:
            return checkpoint_file(Path(path).expanduser())
        looked: list[str] = []
        for filename in TORCHVISION_FILES:
            found = locate.torch_hub_checkpoint(filename)
            if found:
                return found
            looked.append(str(locate.torch_hub_dir() / "checkpoints" / filename))
        for hub_id in HUB_IDS:
            for filename in ("model.safetensors", "pytorch_model.bin"):
                snap = locate.hf_snapshot(hub_id, [filename])
                if snap:
                    return snap / filename
            looked.append(f"{locate.hf_repo_dir(hub_id)}/snapshots/*/model.safetensors")
        first, url = next(iter(TORCHVISION_FILES.items()))
        raise not_found(
            self.name,
            self.modality,
            looked,
            [
                f"download {url} and put it at {locate.torch_hub_dir() / 'checkpoints' / first}",
                "or " + locate.copy_hint(HUB_IDS[0]),
            ],
        )
