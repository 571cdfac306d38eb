"""Cross-attention module sizes (Table 1), forward/backward, predictor, context paths."""

from __future__ import annotations

import pytest
import torch
from mmalign_tijepa.fusion import T2IConfig, T2ICrossAttention, t2i_inputs
from mmalign_tijepa.layers import sincos_2d
from mmalign_tijepa.method import TIJEPA
from mmalign_tijepa.model import TIJEPAModel
from mmalign_tijepa.objective import jepa_loss
from mmalign_tijepa.predictor import JEPAPredictor, PredictorConfig
from tijepa_toys import TINY_FUSION, TINY_PREDICTOR, tiny_batch, tiny_model

PAPER_PARAMS = {"small": 39e6, "medium": 58e6, "large": 131e6}
# image tokens from 1280 wide encoders (ViT-H/14, EfficientNet-Lite0); text at 768
EXACT = {
    # text encoder width: 384 (MiniLM, adapter to 768) / 768 (gte-base, no adapter)
    "small": {384: 39_088_128, 768: 38_792_448},
    "medium": {384: 57_696_480, 768: 57_400_800},
    "large": {384: 131_542_592, 768: 131_246_912},
}

#: (ours / paper - 1) in percent, per row; the README states the same numbers
ERROR_PERCENT = {
    "small": {384: 0.2, 768: -0.5},
    "medium": {384: -0.5, 768: -1.0},
    "large": {384: 0.4, 768: 0.2},
}


def _size_config(size: str) -> T2IConfig:
    overrides = TIJEPA.sizes[size]
    return T2IConfig(**{k.split(".")[1]: v for k, v in overrides.items()
                        if k.startswith("cross_attention.")})


@pytest.mark.parametrize("size", ["small", "medium", "large"])
@pytest.mark.parametrize("text_dim", [384, 768])
def test_cross_attention_parameters_match_table_1(size, text_dim):
    with torch.device("meta"):  # counts without allocating 131M floats
        cfg = _size_config(size)
        module = T2ICrossAttention(cfg, t2i_inputs(cfg, 1280, text_dim))
    count = sum(p.numel() for p in module.parameters() if p.requires_grad)
    assert count == EXACT[size][text_dim]
    # the README's per-row error against Table 1, to 0.1 % (medium with gte-base is -1.0 %)
    assert round(100 * (count / PAPER_PARAMS[size] - 1), 1) == ERROR_PERCENT[size][text_dim]


def test_table_1_sizes():
    cfg = {s: _size_config(s) for s in ("small", "medium", "large")}
    assert [(c.depth, c.heads, c.dim) for c in cfg.values()] == [
        (4, 8, 768), (6, 10, 768), (8, 12, 1024)]


def test_forward_backward_trains_context_and_predictor_only():
    model = tiny_model()
    batch = tiny_batch()
    out = model(batch)
    b, m, k = batch["masks"]["targets"].shape
    assert out["predictions"].shape == (b, m, k, 32) == out["targets"].shape
    # targets are layer-normed per token
    assert torch.allclose(out["targets"].mean(-1), torch.zeros(b, m, k), atol=1e-5)
    jepa_loss(out["predictions"], out["targets"], "l2").backward()
    assert all(p.grad is None for p in model.target.parameters())
    for part in (model.context, model.predictor):
        grads = [p.grad for p in part.parameters() if p.requires_grad]
        assert all(g is not None for g in grads)
        assert sum(float(g.abs().sum()) for g in grads) > 0
    assert not any(p.requires_grad for p in model.target.parameters())


def test_target_starts_as_a_copy_and_stays_in_eval():
    model = tiny_model()
    for a, b in zip(model.context.parameters(), model.target.parameters(), strict=True):
        assert torch.equal(a, b)
    model.train()
    assert model.context.training and not model.target.training


def test_targets_see_the_whole_image_context_only_the_visible_patches():
    model = tiny_model().eval()
    batch = tiny_batch()
    out = model(batch)
    # changing a masked-out patch changes targets (full image) but not predictions
    ctx = set(batch["masks"]["context"][0].tolist())
    hidden = next(i for i in range(49) if i not in ctx)
    batch["image"]["tokens"][0, hidden] += 5.0
    out2 = model(batch)
    assert torch.allclose(out["predictions"][0], out2["predictions"][0], atol=1e-5)
    assert not torch.allclose(out["targets"][0], out2["targets"][0], atol=1e-4)


def test_text_drives_the_fusion():
    model = tiny_model().eval()
    batch = tiny_batch()
    rep = model.represent(batch)
    batch["text"]["tokens"][1] += 1.0
    rep2 = model.represent(batch)
    assert rep.shape == (4, 32)
    assert torch.allclose(rep[0], rep2[0]) and not torch.allclose(rep[1], rep2[1])
    # padded text tokens are ignored
    batch["text"]["tokens"][0, 4] += 100.0
    assert torch.allclose(model.represent(batch)[0], rep2[0], atol=1e-5)


def test_predictor_uses_target_positions():
    torch.manual_seed(0)
    pred = JEPAPredictor(PredictorConfig(depth=1, heads=2, dim=16), embed_dim=8).eval()
    ctx = torch.randn(1, 3, 8)
    ctx_idx = torch.tensor([[0, 1, 2]])
    out = pred(ctx, ctx_idx, torch.tensor([[[10, 11], [30, 31]]]), (7, 7))
    assert out.shape == (1, 2, 2, 8)
    assert not torch.allclose(out[0, 0], out[0, 1])
    # the same target positions in two blocks get the same prediction
    same = pred(ctx, ctx_idx, torch.tensor([[[10, 11], [10, 11]]]), (7, 7))
    assert torch.allclose(same[0, 0], same[0, 1])


def test_sincos_positions_are_distinct():
    pos = sincos_2d((7, 9), 16)
    assert pos.shape == (63, 16)
    assert len({tuple(p.round(decimals=5).tolist()) for p in pos}) == 63


def test_fusion_is_usable_on_its_own():
    fusion = T2ICrossAttention(TINY_FUSION, t2i_inputs(TINY_FUSION, 24, 20))
    batch = tiny_batch()
    out = fusion({"image": batch["image"], "text": batch["text"]})
    assert out.tokens.shape == (4, 49, 32) and out.pooled.shape == (4, 32)
    assert fusion.out_dim == 32
    assert torch.allclose(out.pooled, out.tokens.mean(1), atol=1e-6)  # all patches real
    assert T2ICrossAttention.requirements(TINY_FUSION) == {"image": ("tokens",),
                                                           "text": ("tokens",)}


def test_paper_mode_reencodes_visible_patches(toy_plugin):
    import mmalign

    cls = mmalign.get_registry().get("encoder", "timm")
    encoder = cls(cls.Config(model="vit_tiny_patch16_224", image_size=64, weights="random"))
    assert encoder.supports_keep and encoder.num_patches == 16
    images = torch.randn(2, 3, 64, 64)
    full = encoder(images)
    batch = {
        "index": torch.arange(2),
        "image": {**full, "inputs": images},
        "text": {"tokens": torch.randn(2, 3, 20), "mask": torch.ones(2, 3, dtype=torch.bool)},
    }
    from mmalign_tijepa.masks import MultiblockMaskCollator

    batch["masks"] = MultiblockMaskCollator().for_batch(batch, torch.Generator()).as_batch()
    torch.manual_seed(0)
    paper = TIJEPAModel(TINY_FUSION, TINY_PREDICTOR, image_dim=192, text_dim=20,
                        image_encoder=encoder).eval()
    code = TIJEPAModel(TINY_FUSION, TINY_PREDICTOR, image_dim=192, text_dim=20).eval()
    code.load_state_dict(paper.state_dict())
    assert paper.paper_mode and not code.paper_mode
    assert not any(k.startswith("_encoder") for k in paper.state_dict())
    idx = batch["masks"]["context"]
    alone = paper.visible_tokens(batch["image"], idx)
    assert torch.allclose(alone, encoder(images, keep=idx)["tokens"])
    gathered = code.visible_tokens(batch["image"], idx)
    assert alone.shape == gathered.shape and not torch.allclose(alone, gathered, atol=1e-4)
    out_p, out_c = paper(batch), code(batch)
    assert torch.allclose(out_p["targets"], out_c["targets"])  # both from cached full tokens
    assert not torch.equal(out_p["predictions"], out_c["predictions"])


def _positioned_fusion(positions: str) -> T2ICrossAttention:
    torch.manual_seed(0)
    cfg = TINY_FUSION.model_copy(update={"image_positions": positions})
    return T2ICrossAttention(cfg, t2i_inputs(cfg, 24, 20)).eval()


def test_without_positions_the_pooled_fusion_cannot_tell_where_a_token_is():
    """Moving the image tokens to other cells leaves the encoder-position fusion's
    pooled output unchanged (attention is permutation-equivariant), so a CNN's tokens
    cannot be bound to a place; sincos positions make the same move visible."""
    batch = tiny_batch()
    image, text, mask = batch["image"]["tokens"], batch["text"]["tokens"], batch["text"]["mask"]
    moved = image.roll(7, dims=1)  # every token one row down (wrapping)
    plain, placed = _positioned_fusion("encoder"), _positioned_fusion("sincos")
    with torch.no_grad():
        assert torch.allclose(plain.encode(image, text, mask).mean(1),
                              plain.encode(moved, text, mask).mean(1), atol=1e-5)
        delta = (placed.encode(image, text, mask).mean(1)
                 - placed.encode(moved, text, mask).mean(1)).abs().max()
    assert delta > 1e-3  # the encoder-position fusion moves by < 1e-5


def test_sincos_positions_follow_the_cells_of_a_token_subset():
    """A visible subset gets the positions of its own cells (the blocks' input is the
    projected tokens plus the sine-cosine rows of those cells), and a subset without
    the grid it came from is refused."""
    fusion = _positioned_fusion("sincos")
    batch = tiny_batch()
    image = batch["image"]["tokens"]
    index = torch.tensor([[3, 10, 48]] * image.shape[0])
    subset = torch.gather(image, 1, index[..., None].expand(-1, -1, image.shape[-1]))
    expected = fusion.image_in(subset) + sincos_2d((7, 7), 32)[index]
    captured: dict[str, torch.Tensor] = {}

    def capture(module, args):
        captured["x"] = args[0]

    handle = fusion.blocks[0].register_forward_pre_hook(capture)
    with torch.no_grad():
        fusion.encode(subset, batch["text"]["tokens"], batch["text"]["mask"], index, (7, 7))
    handle.remove()
    assert torch.allclose(captured["x"], expected, atol=1e-6)
    with pytest.raises(ValueError, match="full grid"):
        fusion.encode(subset, batch["text"]["tokens"], batch["text"]["mask"], index)


def test_image_positions_at_its_default_leaves_recorded_configs_unchanged():
    """The field came after runs were recorded: at its default it is not in the dump,
    so the resolved configuration (a run's identity) is what it was; ``mmalign config``
    still shows it."""
    from mmalign.interfaces import ALL_FIELDS

    assert "image_positions" not in T2IConfig().model_dump(mode="json")
    assert T2IConfig(image_positions="sincos").model_dump()["image_positions"] == "sincos"
    assert T2IConfig().model_dump(context=ALL_FIELDS)["image_positions"] == "encoder"
    assert T2IConfig.model_validate(T2IConfig(image_positions="sincos").model_dump()) \
        == T2IConfig(image_positions="sincos")
    with pytest.raises(Exception, match="divisible by 4"):
        cfg = T2IConfig(dim=30, heads=2, text_width=None, image_positions="sincos")
        T2ICrossAttention(cfg, t2i_inputs(cfg, 24, 20))


def test_attentive_pool_ignores_padding_and_reads_single_tokens():
    """Padded tokens do not move the pooled vector; a change to one real token does."""
    from mmalign_tijepa.model import AttentivePool

    torch.manual_seed(0)
    pool = AttentivePool(16, 2).eval()
    tokens = torch.randn(2, 6, 16)
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    base = pool(tokens, mask)
    padded = tokens.clone()
    padded[1, 4:] += 50.0
    assert torch.allclose(pool(padded, mask), base, atol=1e-5)
    moved = tokens.clone()
    moved[1, 0] += 1.0
    assert not torch.allclose(pool(moved, mask)[1], base[1], atol=1e-4)
    assert torch.allclose(pool(moved, mask)[0], base[0], atol=1e-6)
