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
    ln = ProjectionHeads(
        ProjectionHeadsConfig(embed_dim=16, layer_norm=True),
        {m: FeatureSpec(pooled=d) for m, d in {"a": 4}.items()},
    )
    assert isinstance(ln.heads["a"].norm, torch.nn.LayerNorm)


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
