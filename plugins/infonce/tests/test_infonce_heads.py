"""The projection heads (Section III-B): dense -> GELU -> dense -> dropout, a skip from
the first dense layer, 256-d unit-length outputs; and what a round-robin step trains."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from mmalign_infonce.heads import ProjectionHead, ProjectionHeads, ProjectionHeadsConfig
from mmalign_infonce.objective import NModalInfoNCE

from mmalign.interfaces import FeatureSpec


def test_head_is_first_plus_dropout_of_second_of_gelu():
    torch.manual_seed(0)
    head = ProjectionHead(12, 256, dropout=0.0).eval()
    x = torch.randn(5, 12)
    first = x @ head.first.weight.T + head.first.bias
    expected = first + F.gelu(first) @ head.second.weight.T + head.second.bias
    assert torch.allclose(head(x), expected, atol=1e-5)
    assert head.first.weight.shape == (256, 12) and head.second.weight.shape == (256, 256)


def test_dropout_acts_on_the_second_layer_only():
    torch.manual_seed(0)
    head = ProjectionHead(6, 32, dropout=0.5).train()
    x = torch.randn(400, 6)
    out = head(x)
    first = head.first(x)
    residual = out - first  # the dropped branch alone: zeros where dropout fired
    zero_share = float((residual == 0).float().mean())
    assert 0.4 < zero_share < 0.6  # p = 0.5 on the second layer's output, none on the skip


def test_heads_give_unit_vectors_for_the_modalities_in_the_batch():
    heads = ProjectionHeads(
        ProjectionHeadsConfig(embed_dim=16),
        {m: FeatureSpec(pooled=d) for m, d in {"a": 4, "b": 7}.items()},
    )
    fused = heads({"b": {"pooled": torch.randn(3, 7)}})
    out = fused.embeddings
    assert list(out) == ["b"] and out["b"].shape == (3, 16)
    assert torch.allclose(out["b"].norm(dim=-1), torch.ones(3), atol=1e-6)
    assert torch.equal(fused.pooled, out["b"])  # the mean of the embeddings present
    assert heads.out_dim == heads.embed_dim == 16


def test_default_heads_are_the_papers_256_wide_with_one_shared_second_layer_shape():
    """Backbones of different widths: the first layer follows each, the second is
    256 x 256 for every modality (Section III-B); no LayerNorm unless asked for."""
    widths = {"text": 384, "image": 1280, "audio": 128}
    heads = ProjectionHeads(None, {m: FeatureSpec(pooled=d) for m, d in widths.items()})
    for m, d in widths.items():
        head = heads.heads[m]
        assert head.first.weight.shape == (256, d) and head.second.weight.shape == (256, 256)
        assert head.dropout.p == 0.1 and isinstance(head.norm, torch.nn.Identity)
    out = heads.eval()({m: {"pooled": torch.randn(2, d)} for m, d in widths.items()})
    assert all(e.shape == (2, 256) for e in out.embeddings.values())


def test_layer_norm_option_normalises_after_the_skip():
    torch.manual_seed(0)
    head = ProjectionHead(6, 16, dropout=0.0, layer_norm=True).eval()
    with torch.no_grad():  # a non-trivial affine part, so its position shows
        head.norm.weight.uniform_(0.5, 2.0)
        head.norm.bias.uniform_(-1.0, 1.0)
    x = torch.randn(5, 6)
    first = head.first(x)
    summed = first + head.second(F.gelu(first))
    expected = F.layer_norm(summed, (16,), head.norm.weight, head.norm.bias, head.norm.eps)
    assert torch.allclose(head(x), expected, atol=1e-5)
    heads = ProjectionHeads(ProjectionHeadsConfig(embed_dim=16, layer_norm=True),
                            {"a": FeatureSpec(pooled=6)})
    out = heads({"a": {"pooled": x}}).embeddings["a"]
    assert torch.allclose(out.norm(dim=-1), torch.ones(5), atol=1e-6)  # unit length still


def test_dropout_is_off_in_evaluation():
    head = ProjectionHead(6, 32, dropout=0.5)
    x = torch.randn(50, 6)
    assert not torch.equal(head.train()(x), head(x))
    assert torch.equal(head.eval()(x), head(x))


def test_a_round_robin_batch_moves_only_its_two_heads():
    torch.manual_seed(0)
    heads = ProjectionHeads(
        ProjectionHeadsConfig(embed_dim=8),
        {m: FeatureSpec(pooled=d) for m, d in {"a": 4, "b": 4, "c": 4}.items()},
    )
    batch = {
        "label": torch.arange(6),
        "index": torch.arange(6),
        "a": {"pooled": torch.randn(6, 4)},
        "c": {"pooled": torch.randn(6, 4)},
    }
    loss = NModalInfoNCE()({"embeddings": heads(batch).embeddings}, batch)["loss"]
    loss.backward()
    grads = {m: heads.heads[m].first.weight.grad for m in ("a", "b", "c")}
    assert grads["b"] is None
    assert grads["a"].abs().sum() > 0 and grads["c"].abs().sum() > 0
    assert torch.isfinite(loss)
