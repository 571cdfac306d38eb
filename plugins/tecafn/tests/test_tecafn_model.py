"""The network: gates only in training, masks respected, ablation switches."""

import copy

import pytest
import torch
from mmalign_tecafn.fusion import CrossSampleFusion, FusionConfig
from mmalign_tecafn.losses import cosine_similarity_matrix, hard_negatives, text_centred_infonce
from mmalign_tecafn.model import GENERATOR_KEY, PredictionHead, TeCaFNModel
from mmalign_tecafn.objective import LossConfig, TeCaFNObjective

DIMS = {"text": 12, "audio": 5, "video": 7}
SMALL = dict(dim=8, unimodal_dim=8, contrast_dim=8, heads=2, unimodal_layers=1, cross_layers=1)


def make_model(dims=DIMS, **options) -> TeCaFNModel:
    torch.manual_seed(0)
    fusion = CrossSampleFusion(FusionConfig(**{**SMALL, **options}), dims=dims)
    return TeCaFNModel(fusion, PredictionHead(8, 16, 1, 0.1, 3.0))


def make_batch(n=8, lengths=None, seed=0, dims=DIMS):
    """Random token features; ``lengths[m][i]`` real tokens, padding at the end."""
    g = torch.Generator().manual_seed(seed)
    batch = {"label": torch.rand(n, generator=g) * 6 - 3, "index": torch.arange(n)}
    for m, d in dims.items():
        lens = (lengths or {}).get(m, [5 + i % 3 for i in range(n)])
        longest = max(lens)
        tokens = torch.randn(n, longest, d, generator=g)
        mask = torch.arange(longest)[None, :] < torch.tensor(lens)[:, None]
        batch[m] = {"tokens": tokens * mask[..., None], "mask": mask, "pooled": tokens.mean(1)}
    return batch


def test_eval_never_gates_even_with_p_one():
    always = make_model(p=1.0)
    never = make_model(p=0.0)
    never.load_state_dict(always.state_dict())
    batch = make_batch()
    gated = {**batch, GENERATOR_KEY: torch.Generator().manual_seed(0)}
    always.eval()
    never.eval()
    with torch.no_grad():
        out = always(gated)
        assert out["tecafn"]["pair_labels"] == {} and out["tecafn"]["gate_index"] == {}
        assert torch.equal(out["prediction"], never(batch)["prediction"])
        assert torch.equal(out["prediction"], always(batch)["prediction"])


def test_training_with_p_one_replaces_every_sample_by_a_hard_negative():
    model = make_model(p=1.0, num=2).train()
    out = model({**make_batch(), GENERATOR_KEY: torch.Generator().manual_seed(0)})["tecafn"]
    for m in ("audio", "video"):
        assert out["pair_labels"][m].tolist() == [0] * 8
        emb = out["contrast"][m]
        allowed = hard_negatives(cosine_similarity_matrix(emb["query"], emb["key"]), 2)
        assert (allowed == out["gate_index"][m][:, None]).any(1).all()
        assert out["pair_logits"][m].shape == (8, 2)


def test_random_negatives_reach_beyond_the_top_num():
    quiet = dict(dropout=0.0, embed_dropout=0.0, mapper_dropout=0.0)  # fixed similarities
    model = make_model(p=1.0, num=2, random_negatives=["audio"], **quiet).train()
    batch = make_batch()
    gen = torch.Generator().manual_seed(0)
    chosen = {"audio": set(), "video": set()}
    for _ in range(40):
        out = model({**batch, GENERATOR_KEY: gen})["tecafn"]
        for m in chosen:
            chosen[m].add(int(out["gate_index"][m][0]))
    assert 0 not in chosen["audio"] and len(chosen["audio"]) > 2
    assert len(chosen["video"]) <= 2


def test_no_gate_removes_replacement_and_pair_head():
    model = make_model(p=1.0, no_gate=["audio"]).train()
    assert list(model.fusion.pair_heads) == ["video"]
    out = model(make_batch())["tecafn"]
    assert list(out["pair_labels"]) == ["video"]


def test_padding_does_not_change_a_sample():
    model = make_model(conv_kernel=3).eval()
    short = {"text": [4], "audio": [3], "video": [6]}
    alone = make_batch(1, short, seed=3)
    long = make_batch(3, {"text": [4, 9, 7], "audio": [3, 8, 5], "video": [6, 10, 2]}, seed=4)
    for m in DIMS:  # sample 0 of the padded batch is the lone sample
        width = alone[m]["tokens"].shape[1]
        long[m]["tokens"][0] = 0
        long[m]["tokens"][0, :width] = alone[m]["tokens"][0]
    with torch.no_grad():
        a = model(alone)["prediction"][0]
        b = model(long)["prediction"][0]
    assert torch.allclose(a, b, atol=1e-5)


def test_core_switch_and_dropped_modality():
    audio_core = make_model(core="audio")
    assert audio_core.fusion.others == ["text", "video"]
    assert sorted(audio_core.fusion.unimodal) == ["audio", "video"]  # text stays as encoded
    out = audio_core.train()(make_batch())
    assert set(out["tecafn"]["contrast"]) == {"text", "video"} and "bicon" in out["tecafn"]

    no_video = make_model(dims={"text": 12, "audio": 5})
    assert not no_video.fusion.bicon
    assert "bicon" not in no_video.train()(make_batch(dims={"text": 12, "audio": 5}))["tecafn"]

    text_only = make_model(dims={"text": 12})
    pred = text_only.eval()(make_batch(dims={"text": 12}))["prediction"]
    assert pred.shape == (8,) and (pred.abs() <= 3).all()


def test_bicon_variants_contrast_samples_or_positions():
    batch = make_batch(lengths={"text": [3, 5, 4, 2, 5, 3, 4, 5]})
    paper = make_model().eval()(batch)["tecafn"]["bicon"]
    code = make_model(bicon_variant="code").eval()(batch)["tecafn"]["bicon"]
    assert paper["z"].shape == paper["u"].shape == (8, 8)  # one row per sample
    assert code["z"].shape == code["u"].shape == (5, 8)  # one row per text position


def test_objective_is_equation_19():
    model = make_model(p=0.5).train()
    batch = make_batch()
    out = model({**batch, GENERATOR_KEY: torch.Generator().manual_seed(1)})
    objective = TeCaFNObjective(LossConfig(gamma1=0.2, gamma2=0.4))
    losses = objective(out, batch)
    expected = losses["task"] + 0.2 * (losses["tcon"] + losses["bicon"]) + 0.4 * losses["ap"]
    assert torch.allclose(losses["loss"], expected)
    assert torch.allclose(losses["task"], (out["prediction"] - batch["label"]).abs().mean())
    assert losses["ap"] > 0 and losses["bicon"] > 0

    only_video = TeCaFNObjective(LossConfig(no_contrast="audio"))(out, batch)
    video = out["tecafn"]["contrast"]["video"]
    assert torch.allclose(
        only_video["tcon"], text_centred_infonce(video["query"], video["key"], 0.1)
    )


def test_gradients_reach_every_trainable_part():
    model = make_model(p=0.5)
    batch = make_batch()
    out = model.train()({**batch, GENERATOR_KEY: torch.Generator().manual_seed(2)})
    TeCaFNObjective()(out, batch)["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert missing == []


def test_unknown_core_is_refused():
    with pytest.raises(ValueError, match="core"):
        make_model(core="vision")
    copy.deepcopy(make_model())  # a model must be copyable (the runner keeps the best state)
