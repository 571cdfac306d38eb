"""The network: gates only in training, masks respected, ablation switches."""

import copy
import math

import pytest
import torch
from mmalign_tecafn.fusion import CrossSampleFusion, FusionConfig
from mmalign_tecafn.losses import cosine_similarity_matrix, hard_negatives, text_centred_infonce
from mmalign_tecafn.model import GENERATOR_KEY, PredictionHead, PredictionHeadConfig, TeCaFNModel
from mmalign_tecafn.objective import LossConfig, TeCaFNObjective

from mmalign.errors import ConfigError
from mmalign.interfaces import FeatureSpec

DIMS = {"text": 12, "audio": 5, "video": 7}
SMALL = dict(dim=8, unimodal_dim=8, contrast_dim=8, heads=2, unimodal_layers=1, cross_layers=1)


def make_model(dims=DIMS, **options) -> TeCaFNModel:
    torch.manual_seed(0)
    inputs = {m: FeatureSpec(tokens=d) for m, d in dims.items()}
    fusion = CrossSampleFusion(FusionConfig(**{**SMALL, **options}), inputs)
    return TeCaFNModel(fusion, PredictionHead(PredictionHeadConfig(hidden=16), in_dim=8, out_dim=1))


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


def test_padding_does_not_change_a_sample_in_training_either():
    """With the gate off and dropout 0, a training forward of a padded batch gives the
    lone sample the same prediction (padding never leaks into training either)."""
    quiet = dict(dropout=0.0, embed_dropout=0.0, mapper_dropout=0.0, no_gate=["audio", "video"])
    model = make_model(conv_kernel=3, **quiet)
    model.head.mlp[0].p = model.head.mlp[5].p = 0.0
    model.train()
    short = {"text": [4], "audio": [3], "video": [6]}
    alone = make_batch(1, short, seed=3)
    long = make_batch(3, {"text": [4, 9, 7], "audio": [3, 8, 5], "video": [6, 10, 2]}, seed=4)
    for m in DIMS:
        width = alone[m]["tokens"].shape[1]
        long[m]["tokens"][0] = 0
        long[m]["tokens"][0, :width] = alone[m]["tokens"][0]
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


def fused_sequences(model, batch):
    """The cross-attention outputs h_ta, h_tv [B, L, d] of one eval forward."""
    seen = {}
    hooks = [
        model.fusion.cross[m][-1].register_forward_hook(
            lambda _mod, _inp, out, m=m: seen.__setitem__(m, out)
        )
        for m in ("audio", "video")
    ]
    with torch.no_grad():
        out = model(batch)
    for h in hooks:
        h.remove()
    return out, seen


def published_infonce(query, positive, tau):
    """The authors' ``InfoNCE.forward`` at width 30 (no projection, dropout 0) on
    sequence-first ``[L, B, d]`` inputs, written out: transpose(1, 2), mean over the
    last (batch) axis, cosine logits over tau, cross-entropy on the diagonal."""
    q = query.transpose(1, 2).mean(dim=-1)
    k = positive.transpose(1, 2).mean(dim=-1)
    q, k = torch.nn.functional.normalize(q, dim=-1), torch.nn.functional.normalize(k, dim=-1)
    logits = q @ k.T
    return torch.nn.functional.cross_entropy(logits / tau, torch.arange(len(q)))


def test_bicon_code_variant_is_the_published_formula():
    batch = make_batch(lengths={"text": [3, 5, 4, 2, 5, 3, 4, 5]})
    model = make_model(bicon_variant="code", mapper_dropout=0.0).eval()
    assert len(model.fusion.bicon_map) == 0 and len(model.fusion.bicon_code_map) == 0
    out, h = fused_sequences(model, batch)
    ta, tv = h["audio"].transpose(0, 1), h["video"].transpose(0, 1)  # sequence-first
    expected = published_infonce(ta, tv, 0.1) + published_infonce(tv, ta, 0.1)
    got = TeCaFNObjective()(out, batch)["bicon"]
    assert got.item() == pytest.approx(expected.item(), abs=1e-6)
    assert [q.shape for q, _ in out["tecafn"]["bicon"]] == [(5, 8), (5, 8)]  # positions


def test_bicon_code_variant_drops_out_the_query_only():
    batch = make_batch()
    model = make_model(bicon_variant="code", mapper_dropout=0.5).train()
    seen = {}
    for m in ("audio", "video"):
        model.fusion.cross[m][-1].register_forward_hook(
            lambda _mod, _inp, out, m=m: seen.__setitem__(m, out)
        )
    pairs = model(batch)["tecafn"]["bicon"]
    (q_ta, k_tv), (q_tv, k_ta) = pairs
    assert torch.allclose(k_tv, seen["video"].mean(0)) and torch.allclose(
        k_ta, seen["audio"].mean(0)
    )
    assert not torch.allclose(q_ta, seen["audio"].mean(0))  # the query went through dropout


def test_bicon_paper_variant_contrasts_samples_with_g1_g2():
    batch = make_batch(lengths={"text": [3, 5, 4, 2, 5, 3, 4, 5]})
    model = make_model(mapper_dropout=0.0).eval()
    out, h = fused_sequences(model, batch)
    mask = batch["text"]["mask"].float()[..., None]

    def pooled(m):
        mapped = model.fusion.bicon_map[m].conv(h[m].transpose(1, 2)).transpose(1, 2)
        return (mapped * mask).sum(1) / mask.sum(1)

    z, u = pooled("video"), pooled("audio")  # eq. 15-16: z = g1(h_tv), u = g2(h_ta)
    expected = text_centred_infonce(z, u, 0.1) + text_centred_infonce(u, z, 0.1)
    got = TeCaFNObjective()(out, batch)["bicon"]
    assert got.item() == pytest.approx(expected.item(), abs=1e-6)
    assert [q.shape for q, _ in out["tecafn"]["bicon"]] == [(8, 8), (8, 8)]  # samples


def test_xavier_init_option():
    default, xavier = make_model(), make_model(init="xavier")
    w_d = default.fusion.cross["audio"][0].ffn[0].weight
    w_x = xavier.fusion.cross["audio"][0].ffn[0].weight
    fan_in, fan_out = w_x.shape[1], w_x.shape[0]
    assert w_x.std().item() == pytest.approx((2 / (fan_in + fan_out)) ** 0.5, rel=0.15)
    assert not torch.allclose(w_d, w_x)


def test_objective_is_equation_19():
    """Every term recomputed from the model outputs with independent formulas."""
    model = make_model(p=0.5).train()
    batch = make_batch()
    out = model({**batch, GENERATOR_KEY: torch.Generator().manual_seed(1)})
    aux = out["tecafn"]
    objective = TeCaFNObjective(LossConfig(gamma1=0.2, gamma2=0.4, tau=0.1))
    losses = objective(out, batch)
    f = torch.nn.functional

    def nce(q, k):  # eq. 6 in the standard form: -log softmax of the diagonal
        logits = f.normalize(q, dim=-1) @ f.normalize(k, dim=-1).T / 0.1
        return -(logits.diag() - logits.logsumexp(1)).mean()

    task = (out["prediction"] - batch["label"]).abs().mean()
    tcon = sum(nce(e["query"], e["key"]) for e in aux["contrast"].values())
    bicon = sum(nce(q, k) for q, k in aux["bicon"])
    ap = 0.0
    for m, y in aux["pair_labels"].items():
        logp = aux["pair_logits"][m].log_softmax(1)
        ap = ap - logp[torch.arange(len(y)), y].mean()
    for name, value in {"task": task, "tcon": tcon, "bicon": bicon, "ap": ap}.items():
        assert losses[name].item() == pytest.approx(float(value.detach()), rel=1e-5), name
    total = task + 0.2 * (tcon + bicon) + 0.4 * ap
    assert losses["loss"].item() == pytest.approx(float(total.detach()), rel=1e-5)
    assert set(aux["pair_labels"]) == {"audio", "video"}

    only_video = TeCaFNObjective(LossConfig(no_contrast="audio"))(out, batch)
    video = aux["contrast"]["video"]
    assert only_video["tcon"].item() == pytest.approx(
        float(nce(video["query"], video["key"]).detach()), rel=1e-5
    )


def test_objective_is_equation_19_worked_by_hand():
    """Equation 19 on hand-made outputs whose every term is worked out with ``math``:
    L = L_task + γ1 (L_tcon + L_bicon) + γ2 L_ap, L_task the MAE (eq. 18), L_tcon the
    sum of the per-modality InfoNCEs (eq. 6), L_bicon both directions (eq. 15–16) and
    L_ap the sum of the per-modality pair cross-entropies (eq. 14). Distinct γ1, γ2
    catch a swap; the cosines are 1, 0 and r = 1/√2 at τ = 0.5 (logits 2, 0, 2r)."""
    t = torch.tensor
    q, k = t([[1.0, 0.0], [0.0, 1.0]]), t([[1.0, 0.0], [1.0, 1.0]])
    outputs = {
        "prediction": t([0.5, -1.0]),
        "tecafn": {
            "contrast": {"audio": {"query": q, "key": k}, "video": {"query": q, "key": 3 * q}},
            "bicon": [(q, k), (k, q)],
            "pair_logits": {"audio": t([[0.0, 0.0], [2.0, 0.0]]),
                            "video": t([[1.0, 0.0], [0.0, 3.0]])},
            "pair_labels": {"audio": t([1, 0]), "video": t([1, 1])},
        },
    }
    batch = {"label": t([1.0, 1.0])}
    r, log, e = 1 / math.sqrt(2), math.log, math.exp
    task = (0.5 + 2.0) / 2
    ta = (log(1 + e(2 * r - 2)) + log(1 + e(-2 * r))) / 2  # text -> audio rows [2, 2r], [0, 2r]
    tv = log(1 + e(-2))  # text -> video: rows [2, 0] and [0, 2]
    at = (log(1 + e(-2)) + log(2)) / 2  # the keys as queries: rows [2, 0] and [2r, 2r]
    ap_audio = (log(2) + log(1 + e(-2))) / 2
    ap_video = (log(1 + e(1)) + log(1 + e(-3))) / 2
    want = {"task": task, "tcon": ta + tv, "bicon": ta + at, "ap": ap_audio + ap_video,
            "replaced_audio": 0.5, "replaced_video": 0.0}
    want["loss"] = task + 0.2 * (ta + tv + ta + at) + 0.4 * (ap_audio + ap_video)
    got = TeCaFNObjective(LossConfig(gamma1=0.2, gamma2=0.4, tau=0.5))(outputs, batch)
    assert {key: float(v) for key, v in got.items()} == pytest.approx(want, rel=1e-6)
    without_audio = TeCaFNObjective(LossConfig(tau=0.5, no_contrast="audio"))(outputs, batch)
    assert float(without_audio["tcon"]) == pytest.approx(tv, rel=1e-6)


def test_gradients_reach_every_trainable_part():
    model = make_model(p=0.5)
    batch = make_batch()
    out = model.train()({**batch, GENERATOR_KEY: torch.Generator().manual_seed(2)})
    TeCaFNObjective()(out, batch)["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert missing == []


def test_unknown_core_is_refused():
    with pytest.raises(ConfigError, match="core modality 'vision'"):
        make_model(core="vision")
    copy.deepcopy(make_model())  # a model must be copyable (the runner keeps the best state)
