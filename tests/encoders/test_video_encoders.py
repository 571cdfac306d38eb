"""video-frames (PyAV + a per-frame image encoder) and video-features."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch

from mmalign.encoders.sequences import FeatureSequenceConfig, VideoFeaturesEncoder
from mmalign.encoders.video import VideoFramesConfig, VideoFramesEncoder, frame_indices
from mmalign.errors import ConfigError, DataError, RegistryError
from mmalign.interfaces import Encoder

FRAME_ENCODER = {
    "frame_encoder": "timm",
    "frame_encoder_config": {"model": "test_resnet", "image_size": 32},
}


def clip(path: Path, n: int) -> Path:
    """An mpeg4 clip whose frame i is filled with grey level 10*i."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(n):
            frame = np.full((48, 64, 3), 10 * i, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def enc() -> VideoFramesEncoder:
    return VideoFramesEncoder(VideoFramesConfig(num_frames=4, **FRAME_ENCODER))


def test_frame_indices_spread_evenly() -> None:
    assert frame_indices(20, 4) == [0, 6, 13, 19]
    assert frame_indices(3, 8) == [0, 1, 2]


def test_decoded_clip_gives_one_token_per_frame(enc: VideoFramesEncoder, tmp_path: Path) -> None:
    long = enc.preprocess(clip(tmp_path / "long.mp4", 20))
    short = enc.preprocess(clip(tmp_path / "short.mp4", 2))
    assert long.shape == (4, 3, 32, 32) and short.shape == (2, 3, 32, 32)
    feats = enc(enc.collate([long, short]))
    d = enc.out_dim
    assert feats["tokens"].shape == (2, 4, d) and feats["pooled"].shape == (2, d)
    assert feats["mask"].tolist() == [[True] * 4, [True, True, False, False]]
    per_frame = enc.frame_encoder(long)["pooled"]
    torch.testing.assert_close(feats["tokens"][0], per_frame, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(feats["pooled"][1], feats["tokens"][1, :2].mean(0))
    # frames come out in order: the sampled grey levels rise
    grey = [float(f.mean()) for f in long]
    assert grey == sorted(grey) and grey[0] < grey[-1]


def test_frame_arrays_and_bad_inputs(enc: VideoFramesEncoder, tmp_path: Path) -> None:
    frames = np.zeros((10, 40, 40, 3), dtype=np.uint8)
    assert enc.preprocess(frames).shape == (4, 3, 32, 32)
    with pytest.raises(DataError, match="video-features"):
        enc.preprocess(np.zeros((10, 20), dtype=np.float32))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    with pytest.raises(DataError, match="broken.mp4"):
        enc.preprocess(broken)
    with pytest.raises(DataError, match="gone.mp4"):
        enc.preprocess(tmp_path / "gone.mp4")


def test_frame_encoder_must_be_an_image_encoder() -> None:
    with pytest.raises(ConfigError, match="efficientnet-lite0"):
        VideoFramesEncoder(VideoFramesConfig(frame_encoder="minilm-l6"))
    with pytest.raises(ConfigError, match="frame_encoder_config"):
        VideoFramesEncoder(
            VideoFramesConfig(frame_encoder="timm", frame_encoder_config={"modle": "x"})
        )


def test_fingerprint_follows_the_frame_encoder() -> None:
    a = VideoFramesEncoder(VideoFramesConfig(num_frames=4, **FRAME_ENCODER))
    b = VideoFramesEncoder(VideoFramesConfig(num_frames=6, **FRAME_ENCODER))
    other = {
        "frame_encoder": "timm",
        "frame_encoder_config": {"model": "test_resnet", "image_size": 32, "seed": 1},
    }
    c = VideoFramesEncoder(VideoFramesConfig(num_frames=4, **other))
    assert len({a.fingerprint(), b.fingerprint(), c.fingerprint()}) == 3


def test_video_features_pass_through() -> None:
    enc = VideoFeaturesEncoder(FeatureSequenceConfig(dim=3))
    feats = enc(enc.collate([enc.preprocess(np.ones((2, 3), dtype=np.float32))]))
    assert enc.modality == "video" and feats["tokens"].shape == (1, 2, 3)


class MeanColourEncoder(Encoder):
    """A third-party image encoder: the mean colour of a frame (no weights)."""

    modality = "image"

    @property
    def out_dim(self) -> int:
        return 3

    def preprocess(self, raw):
        return torch.as_tensor(np.asarray(raw, dtype=np.float32)).mean((0, 1)) / 255

    def forward(self, inputs):
        return {"pooled": inputs}

    def fingerprint(self) -> str:
        return "mean-colour"


def test_a_plugins_image_encoder_encodes_video_frames(toy_plugin) -> None:
    toy_plugin.add("encoder", "mean-colour", MeanColourEncoder)
    enc = VideoFramesEncoder(VideoFramesConfig(num_frames=2, frame_encoder="mean-colour"))
    frames = np.stack([np.full((4, 4, 3), v, dtype=np.uint8) for v in (0, 51, 255)])
    feats = enc(enc.collate([enc.preprocess(frames)]))
    # two of three frames, spread evenly: the first and the last
    assert torch.allclose(feats["tokens"][0], torch.tensor([[0.0] * 3, [1.0] * 3]))
    assert torch.allclose(feats["pooled"][0], torch.full((3,), 0.5))
    with pytest.raises(RegistryError, match="No encoder named 'mean-colur'.*'mean-colour'"):
        VideoFramesEncoder(VideoFramesConfig(frame_encoder="mean-colur"))
