"""Shapes and behaviour of the Hierarchical Attention, both branches and the CMF."""

from __future__ import annotations

import pytest
import torch
from mmalign_sppscl.fusion import CMFConfig, CrossModalFusion
from mmalign_sppscl.image import ImageBranch
from mmalign_sppscl.model import SPPSCLModel, branch_specs
from mmalign_sppscl.text import HierarchicalAttention, TextBranch, word_mask

from mmalign.errors import ConfigError

B, K, L, C = 3, 4, 7, 10


def text_features(lengths=(7, 5, 3), seed=0, layers=K):
    g = torch.Generator().manual_seed(seed)
    states = torch.randn(B, layers, L, C, generator=g)
    mask = torch.arange(L)[None] < torch.tensor(lengths)[:, None]
    return {"layers": states, "tokens": states[:, -1], "mask": mask, "pooled": states[:, -1, 0]}


def test_ha_weights_shape_range_and_weighted_sum():
    torch.manual_seed(0)
    ha = HierarchicalAttention(K)
    feats = text_features()
    words = feats["layers"][:, :, 1:]
    out, w = ha(feats["layers"], words, feats["mask"])
    assert w.shape == (B, K)
    assert ((w > 0) & (w < 1)).all()  # independent sigmoids, not a softmax
    # the weights are the FC of the channel-mean of each layer's [CLS] state
    cls_mean = feats["layers"][:, :, 0].mean(-1)
    assert torch.allclose(w, ha.fc(cls_mean))
    manual = sum(w[:, k, None, None] * words[:, k] for k in range(K))
    assert out.shape == (B, L - 1, C)
    assert torch.allclose(out, manual, atol=1e-6)


def test_ha_cls_summary_reads_only_token_zero_and_mean_summary_respects_mask():
    torch.manual_seed(0)
    feats = text_features()
    other = {k: v.clone() for k, v in feats.items()}
    other["layers"][:, :, 1:] += 5.0  # every token but [CLS]
    cls = HierarchicalAttention(K, "cls")
    assert torch.allclose(
        cls.weights(feats["layers"], feats["mask"]), cls.weights(other["layers"], other["mask"])
    )
    mean = HierarchicalAttention(K, "mean")
    padded = {k: v.clone() for k, v in feats.items()}
    padded["layers"][2, :, 3:] = 99.0  # sample 2 has 3 real tokens
    assert torch.allclose(
        mean.weights(feats["layers"], feats["mask"]), mean.weights(padded["layers"], feats["mask"])
    )
    assert not torch.allclose(
        mean.weights(feats["layers"], feats["mask"]), mean.weights(other["layers"], feats["mask"])
    )


def test_word_mask_drops_cls_and_sep():
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.bool)
    keep, words = word_mask(mask, special_tokens=True, mask_padding=True)
    assert keep.tolist() == [False, True, True, True, True]
    assert words.tolist() == [[True, True, True, False], [True, False, False, False]]
    keep, words = word_mask(mask, special_tokens=True, mask_padding=False)
    assert keep.tolist() == [False, True, True, True, False]  # the authors' [1:-1]
    keep, words = word_mask(mask, special_tokens=False, mask_padding=True)
    assert keep.all() and torch.equal(words, mask)


def test_text_branch_shapes():
    torch.manual_seed(0)
    branch = TextBranch(C, layers=K, hidden=6, dim=8).eval()
    out = branch(text_features())
    assert out["pooled"].shape == (B, 8)
    assert out["tokens"].shape == (B, L - 1, 12)  # [CLS] dropped, BiLSTM 2×6
    assert out["mask"].shape == (B, L - 1)
    assert out["weights"].shape == (B, K)


def test_masked_text_branch_ignores_padding_and_unmasked_does_not():
    feats = text_features()
    noisy = {k: v.clone() for k, v in feats.items()}
    noisy["layers"][1, :, 5:] = 3.0  # sample 1 has 5 real tokens
    torch.manual_seed(0)
    masked = TextBranch(C, layers=K, hidden=6, dim=8, mask_padding=True).eval()
    assert torch.allclose(masked(feats)["pooled"], masked(noisy)["pooled"], atol=1e-6)
    torch.manual_seed(0)
    original = TextBranch(C, layers=K, hidden=6, dim=8, mask_padding=False).eval()
    assert not torch.allclose(original(feats)["pooled"][1], original(noisy)["pooled"][1])


def test_text_branch_uses_the_last_layers_and_refuses_too_few():
    torch.manual_seed(0)
    branch = TextBranch(C, layers=2, hidden=6, dim=8).eval()
    six = text_features(layers=6)
    last_two = dict(six, layers=six["layers"][:, -2:])
    assert torch.allclose(branch(six)["pooled"], branch(last_two)["pooled"])
    with pytest.raises(ConfigError, match="layers"):
        TextBranch(C, layers=4)(dict(six, layers=six["layers"][:, :2]))
    no_layers = {k: v for k, v in six.items() if k != "layers"}
    with pytest.raises(ConfigError, match="ha_layers=1"):
        branch(no_layers)
    single = TextBranch(C, layers=1, hidden=6, dim=8).eval()
    assert single(no_layers)["weights"].shape == (B, 1)


def test_image_branch_shapes_and_pooled_only_input():
    torch.manual_seed(0)
    branch = ImageBranch(C, channels=5, dim=8).eval()
    tokens = torch.randn(B, 49, C)
    out = branch({"tokens": tokens, "mask": torch.ones(B, 49, dtype=torch.bool)})
    assert out["pooled"].shape == (B, 8)
    assert out["tokens"].shape == (B, 49, 5)
    pooled_only = branch({"pooled": tokens.mean(1)})
    assert pooled_only["pooled"].shape == (B, 8) and pooled_only["tokens"].shape == (B, 1, 5)


def specs():
    return branch_specs(8, 5, 12)


def branch_outputs(b=5, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(b, 6, dtype=torch.bool)
    mask[1, 4:] = False
    return {
        "image": {"pooled": torch.randn(b, d, generator=g), "tokens": torch.randn(b, 9, 5,
                  generator=g), "mask": torch.ones(b, 9, dtype=torch.bool)},
        "text": {"pooled": torch.randn(b, d, generator=g), "tokens": torch.randn(b, 6, 12,
                 generator=g), "mask": mask},
    }


@pytest.mark.parametrize("mode, width", [("batch", 32), ("sample", 32), ("none", 16)])
def test_cmf_shapes(mode, width):
    torch.manual_seed(0)
    cmf = CrossModalFusion(CMFConfig(mode=mode, dim=8), specs()).eval()
    out = cmf(branch_outputs())
    fused = out.pooled
    assert fused.shape == (5, width)
    feats = branch_outputs()
    # M_p ends with [I_p, T_p]
    assert torch.equal(fused[:, -16:-8], feats["image"]["pooled"])
    assert torch.equal(fused[:, -8:], feats["text"]["pooled"])
    assert torch.equal(out.embeddings["image"], feats["image"]["pooled"])


def test_cmf_batch_mode_attends_across_samples():
    torch.manual_seed(0)
    cmf = CrossModalFusion(CMFConfig(mode="batch", dim=8), specs()).eval()
    feats = branch_outputs()
    changed = branch_outputs()
    changed["image"]["pooled"][4] += 1.0  # another sample of the batch
    assert not torch.allclose(cmf(feats).pooled[0], cmf(changed).pooled[0])
    alone = {m: {k: v[:1] for k, v in f.items()} for m, f in feats.items()}
    # a batch of one: the softmax over one key is 1, so I_m = V_I(I_p)
    i_m = cmf(alone).pooled[0, :8]
    assert torch.allclose(i_m, cmf.image_attention.v(feats["image"]["pooled"][:1])[0])


def test_cmf_sample_mode_is_independent_of_the_batch():
    torch.manual_seed(0)
    cmf = CrossModalFusion(CMFConfig(mode="sample", dim=8), specs()).eval()
    feats = branch_outputs()
    changed = branch_outputs()
    changed["image"]["pooled"][4] += 1.0
    changed["text"]["tokens"][3] += 1.0
    assert torch.allclose(cmf(feats).pooled[:3], cmf(changed).pooled[:3])
    alone = {m: {k: v[:1] for k, v in f.items()} for m, f in feats.items()}
    assert torch.allclose(cmf(alone).pooled[0], cmf(feats).pooled[0], atol=1e-6)
    padded = branch_outputs()
    padded["text"]["tokens"][1, 4:] = 50.0  # masked positions of sample 1
    assert torch.allclose(cmf(feats).pooled, cmf(padded).pooled, atol=1e-6)


def test_model_outputs():
    torch.manual_seed(0)
    model = SPPSCLModel(image_dim=C, text_dim=C, num_classes=3, dim=8, lstm_hidden=6).eval()
    feats = text_features()
    batch = {"image": {"tokens": torch.randn(B, 4, C), "mask": torch.ones(B, 4, dtype=torch.bool)},
             "text": feats}
    out = model(batch)
    assert out["logits"].shape == (B, 3)
    assert out["embeddings"]["image"].shape == out["embeddings"]["text"].shape == (B, 8)
    assert out["fused"].shape == (B, 16)
    assert out["ha_weights"].shape == (B, K)


def test_cmf_projects_other_widths_and_pairs_two_modalities():
    """As a fusion for any method: pooled inputs of other widths are projected to D."""
    from mmalign.errors import ConfigError
    from mmalign.interfaces import FeatureSpec

    cmf = CrossModalFusion(CMFConfig(dim=8), {"a": FeatureSpec(pooled=20),
                                              "b": FeatureSpec(pooled=6)}).eval()
    assert cmf.pair == ("a", "b") and cmf.out_dim == 32 and cmf.embed_dim == 8
    out = cmf({"a": {"pooled": torch.randn(4, 20)}, "b": {"pooled": torch.randn(4, 6)}})
    assert out.pooled.shape == (4, 32) and out.embeddings["b"].shape == (4, 8)
    with pytest.raises(ConfigError, match="exactly two modalities"):
        CrossModalFusion(CMFConfig(), {m: FeatureSpec(pooled=4) for m in "abc"})
    assert CrossModalFusion.requirements(CMFConfig(mode="sample")) == {
        "*": ("pooled", "tokens")}
