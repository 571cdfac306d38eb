"""The paper-protocol switches: one caption per image per epoch, the final weights kept,
the parameter groups, and clear refusals of options that cannot work."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from mmalign_tijepa.masks import MultiblockMaskCollator
from mmalign_tijepa.method import TIJEPA, TIJEPAConfig
from mmalign_tijepa.pairs import PretrainLoader, image_groups
from tijepa_toys import tiny_model, toy_sets

from mmalign.errors import ConfigError, MMAlignError
from mmalign.interfaces import TrainConfig
from mmalign.runner.optim import parameter_groups

# three images with 5, 1 and 3 captions, ids as the COCO reader writes them
IDS = [f"{img}-{ann}" for img, n in ((7, 5), (11, 1), (3, 3)) for ann in range(n)]


def test_image_groups_follow_the_coco_ids():
    order, runs = image_groups(IDS)
    starts, counts = runs.tolist()
    assert counts == [5, 1, 3]
    groups = [order[s : s + c].tolist() for s, c in zip(starts, counts, strict=True)]
    assert groups == [[0, 1, 2, 3, 4], [5], [6, 7, 8]]
    with pytest.raises(ConfigError, match="sample id 'abc' is not"):
        image_groups(["abc"])


def test_one_random_caption_visits_each_image_once_per_epoch():
    loader = PretrainLoader(MultiblockMaskCollator(), "one-random")
    fs = SimpleNamespace(sample_ids=IDS, __len__=None)
    fs = type("FS", (), {"sample_ids": IDS, "__len__": lambda self: len(IDS)})()
    image_of = [sid.split("-")[0] for sid in IDS]
    g = torch.Generator().manual_seed(0)
    seen_captions: dict[str, set[int]] = {"7": set(), "11": set(), "3": set()}
    for _ in range(60):
        picked = loader.epoch_positions(fs, g, train=True).tolist()
        assert sorted(image_of[p] for p in picked) == ["11", "3", "7"]
        for p in picked:
            seen_captions[image_of[p]].add(p)
    # over 60 epochs every caption of every image is drawn (5 and 3 choices)
    assert seen_captions == {"7": {0, 1, 2, 3, 4}, "11": {5}, "3": {6, 7, 8}}
    assert loader.batches_per_epoch(fs, 2, drop_last=False) == 2  # 3 images
    assert loader.batches_per_epoch(fs, 2, drop_last=True) == 1
    # validation visits every pair in order; "all" visits every pair each epoch
    assert loader.epoch_positions(fs, g, train=False).tolist() == list(range(9))
    every = PretrainLoader(MultiblockMaskCollator(), "all")
    assert sorted(every.epoch_positions(fs, g, train=True).tolist()) == list(range(9))
    assert every.batches_per_epoch(fs, 2, drop_last=False) == 5


def test_parameter_groups_keep_mask_token_biases_and_norms_out_of_decay():
    model = tiny_model()
    cfg = TIJEPAConfig().train
    assert cfg.decay_exclude_1d and cfg.monitor == "last"
    groups = parameter_groups(TrainConfig(weight_decay=0.04, decay_exclude_1d=True), model)
    no_decay = {id(p) for g in groups if g["weight_decay"] == 0 for p in g["params"]}
    names = {id(p): n for n, p in model.named_parameters()}
    excluded = {names[i] for i in no_decay}
    assert "predictor.mask_token" in excluded
    assert all(n.endswith(".bias") or model.get_parameter(n).ndim <= 1
               or n == "predictor.mask_token" for n in excluded)
    decayed = {n for n, p in model.named_parameters() if p.requires_grad} - excluded
    assert "context.blocks.0.cross_attn.q.weight" in decayed or any(
        n.endswith("weight") and model.get_parameter(n).ndim == 2 for n in decayed)
    assert not any(n.startswith("target.") for n in decayed | excluded)  # the EMA copy


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        ({"encoders.a.cache": False}, r"encoders.a.cache=false is not supported"),
        ({"masks.modality": "b"}, r"masks.modality='b' but the masks are on the image"),
        ({"captions": "one-random"}, r"captions='one-random' needs image-caption pairs"),
    ],
)
def test_unsupported_options_are_refused_before_any_work(toy_plugin, run_method, sets,
                                                         message):
    with pytest.raises(MMAlignError, match=message):
        run_method("ti-jepa", task="toy-pairs", **toy_sets(**sets))


@pytest.mark.parametrize("size", ["small", "medium", "large", "paper"])
def test_every_paper_size_resolves_to_the_paper_encoders_and_decoding_workers(size):
    from mmalign.runner.compose import method_config

    cfg = method_config(TIJEPA(), "mvsa-multi", size, [])
    assert cfg.encoders["image"].name == "ijepa-vit-h14"
    assert cfg.encoders["text"].name == "gte-base"
    assert cfg.train.num_workers == 8
    assert cfg.cross_attention.dim == (1024 if size in ("large", "paper") else 768)


def test_the_cpu_size_keeps_the_embedded_encoders_in_the_loading_process():
    from mmalign.runner.compose import method_config

    cfg = method_config(TIJEPA(), "synth-clash", "cpu", [])
    assert (cfg.encoders["image"].name, cfg.encoders["text"].name) == (
        "efficientnet-lite0", "minilm-l6")
    assert cfg.train.num_workers == 0


def test_paper_size_and_embedded_pretraining():
    for task in ("synth-sentiment", "synth-sarcasm"):  # embedded probe, embedded pretraining
        assert TIJEPA.task_overrides[task]["pretrain_task"] == "synth-captions"
    assert "mvsa-single" not in TIJEPA.task_overrides  # real probe tasks: COCO
    assert TIJEPAConfig().captions == "one-random"


def test_captions_setting_keys_the_stored_pretraining(toy_plugin, run_method, monkeypatch):
    import mmalign_tijepa.method as method

    monkeypatch.setattr(method, "check_caption_tasks", lambda cfg: None)
    base = {"train.epochs": 1, "probe.train.epochs": 1}
    first = run_method("ti-jepa", task="toy-pairs", **toy_sets(**base))
    again = run_method("ti-jepa", task="toy-pairs", **toy_sets(**base))
    assert again.extra["stages"]["pretrain"]["reused"]
    # the masks' modality is not in the key: setting it to its only valid value reuses
    same = run_method("ti-jepa", task="toy-pairs", **toy_sets(**base, **{"masks.modality": "a"}))
    assert same.extra["stages"]["pretrain"]["reused"]
    # toy ids are not COCO-style, so one-random cannot group them: refused at the loader
    with pytest.raises(ConfigError, match="groups pairs by image"):
        run_method("ti-jepa", task="toy-pairs", **toy_sets(**base, captions="one-random"))
    assert first.status == "completed"


def test_changed_data_under_the_same_config_is_pretrained_again(toy_plugin, run_method,
                                                                monkeypatch):
    from mmalign.testing import ToyPairsTask

    base = {"train.epochs": 1, "probe.train.epochs": 1}
    first = run_method("ti-jepa", task="toy-pairs", **toy_sets(**base))
    assert "reused" not in first.extra["stages"]["pretrain"]
    load = ToyPairsTask.load

    def fewer(self):  # the same task and config, other data on disk
        data = load(self)
        data.splits["train"] = data.splits["train"][:-5]
        return data

    monkeypatch.setattr(ToyPairsTask, "load", fewer)
    second = run_method("ti-jepa", task="toy-pairs", **toy_sets(**base))
    assert "reused" not in second.extra["stages"]["pretrain"]
    third = run_method("ti-jepa", task="toy-pairs", **toy_sets(**base))
    assert third.extra["stages"]["pretrain"]["reused"]


def _fit_spy(monkeypatch, free_bytes: int) -> list[list]:
    """Every fit check's needs, with the free disk patched to ``free_bytes``."""
    from mmalign.store import feasibility
    from mmalign.testing import limit_free_disk

    limit_free_disk(monkeypatch, free_bytes)
    seen: list[list] = []
    original = feasibility.check
    monkeypatch.setattr(feasibility, "check",
                        lambda needs, *a: seen.append(list(needs)) or original(needs, *a))
    return seen


def test_every_stage_is_checked_to_fit_before_the_first_one_trains(toy_plugin, run_method,
                                                                    monkeypatch):
    from mmalign.store.feasibility import DoesNotFitError

    seen = _fit_spy(monkeypatch, 1000)
    sets = toy_sets(pretrain_task="toy-scores")  # other inputs than the probe's toy-pairs
    with pytest.raises(DoesNotFitError):
        run_method("ti-jepa", task="toy-pairs", **sets)
    (needs,) = seen  # one check for the run, not one per stage
    # two encoders x two stages on different data
    assert len(needs) == 4 and {n.inputs for n in needs} == {240}
    from mmalign import paths
    assert not list((paths.runs_dir()).glob("*/stage-*.ckpt"))  # no stage trained


def test_a_stage_showing_the_encoders_the_same_inputs_adds_nothing_to_the_check(
    toy_plugin, run_method, monkeypatch
):
    seen = _fit_spy(monkeypatch, 10**9)
    result = run_method("ti-jepa", task="toy-pairs", **toy_sets())  # pretrains on the same data
    assert result.status == "completed"
    (needs,) = seen
    assert len(needs) == 2 and {n.inputs for n in needs} == {240}
