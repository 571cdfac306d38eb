import pytest
import torch

from mmalign.components.fusion import ConcatFusion
from mmalign.errors import ConfigError, RegistryError
from mmalign.interfaces import (
    FeatureSpec,
    Fusion,
    Metric,
    Objective,
    StrictModel,
    Task,
)
from mmalign.registry import Registry


class ALoss(Objective):
    """A loss for tests.

    More text that is not the summary.
    """

    def forward(self, outputs, batch):
        return {"loss": outputs["x"].sum()}


class BLoss(ALoss):
    """Another loss."""


class ATask(Task):
    """A task for tests."""

    name = "a-task"

    def load(self):
        raise AssertionError("never loaded here")


def test_register_get_and_list_with_filter():
    reg = Registry()
    reg.register("objective", "a-loss", ALoss, plugin="p1", distribution="d1")
    reg.register("objective", "b-loss", BLoss, plugin="p1", summary="custom")
    reg.register("task", "a-task", ATask, plugin="p2")
    assert reg.get("objective", "a-loss") is ALoss
    assert [e.name for e in reg.list("objective")] == ["a-loss", "b-loss"]
    assert [e.name for e in reg.list(pattern="a-*")] == ["a-loss", "a-task"]
    entry = reg.entry("objective", "a-loss")
    assert (entry.plugin, entry.distribution, entry.summary) == ("p1", "d1", "A loss for tests.")
    assert reg.entry("objective", "b-loss").summary == "custom"


def test_duplicate_names_both_plugins():
    reg = Registry()
    reg.register("objective", "x", ALoss, plugin="first", distribution="dist-one")
    with pytest.raises(RegistryError) as exc:
        reg.register("objective", "x", BLoss, plugin="second", distribution="dist-two")
    message = str(exc.value)
    assert "first" in message and "second" in message and "dist-one" in message


def test_same_name_different_kind_is_fine():
    reg = Registry()
    reg.register("objective", "x", ALoss)
    reg.register("fusion", "x", ConcatFusion)
    assert len(reg.list()) == 2


def test_unknown_name_suggests_closest():
    reg = Registry()
    reg.register("objective", "late-loss", ALoss)
    with pytest.raises(RegistryError, match="Did you mean 'late-loss'"):
        reg.get("objective", "late-los")


def test_unknown_kind_is_rejected():
    with pytest.raises(RegistryError, match="Unknown kind 'objectve'.*objective"):
        Registry().register("objectve", "x", ALoss)


@pytest.mark.parametrize(
    ("kind", "obj", "needle"),
    [
        ("fusion", dict, "must be a subclass of mmalign.Fusion, got class builtins.dict"),
        ("objective", 42, "must be a subclass of mmalign.Objective, got int 42"),
        ("method", ALoss, "must be a subclass of mmalign.Method"),
        ("metric", len, "must be a mmalign.Metric"),
        ("collator", 3, "must be callable"),
    ],
)
def test_registration_checks_the_kind(kind, obj, needle):
    with pytest.raises(RegistryError, match=needle):
        Registry().register(kind, "thing", obj, plugin="p")


def test_registration_checks_config_and_fusion_declarations():
    class NoConfig(ALoss):
        """Config is not a pydantic model."""

        Config = dict

    class BadNeeds(ConcatFusion):
        """Needs a key no encoder offers."""

        requires = {"*": ("pooled", "layers")}

    with pytest.raises(RegistryError, match="Config to a mmalign.StrictModel"):
        Registry().register("objective", "n", NoConfig)
    with pytest.raises(RegistryError, match=r"unknown feature keys \(layers\)"):
        Registry().register("fusion", "b", BadNeeds)


class ScaleConfig(StrictModel):
    scale: float = 1.0


class ScaledLoss(ALoss):
    """A loss with an option and a build argument."""

    Config = ScaleConfig

    def __init__(self, config=None, *, offset=0.0):
        super().__init__(config)
        self.offset = offset

    def forward(self, outputs, batch):
        return {"loss": self.config.scale * outputs["x"].sum() + self.offset}


def test_create_validates_config_and_passes_build_args():
    reg = Registry()
    reg.register("objective", "scaled", ScaledLoss)
    loss = reg.create("objective", {"name": "scaled", "config": {"scale": 2.0}}, offset=1.0)
    assert float(loss({"x": torch.tensor([1.0, 2.0])}, {})["loss"]) == 7.0
    assert reg.create("objective", "scaled").config.scale == 1.0
    with pytest.raises(ConfigError, match=r"Unknown config key 'objective.config.scal' of "
                                          r"objective 'scaled'. Did you mean 'scale'"):
        reg.create("objective", {"name": "scaled", "config": {"scal": 2}})
    with pytest.raises(ConfigError, match=r"Invalid value for 'loss.config.scale'"):
        reg.create("objective", {"name": "scaled", "config": {"scale": "big"}}, where="loss")
    with pytest.raises(RegistryError, match=r"No objective named 'scald' \(objective.name\)"
                                            r".*Did you mean 'scaled'"):
        reg.create("objective", "scald")


def test_create_builds_a_fusion_from_its_inputs():
    reg = Registry()
    reg.register("fusion", "concat", ConcatFusion)
    fusion = reg.create("fusion", "concat", inputs={"b": FeatureSpec(pooled=3),
                                                   "a": FeatureSpec(pooled=2, tokens=2)})
    assert isinstance(fusion, Fusion) and fusion.out_dim == 5
    out = fusion({"a": {"pooled": torch.ones(4, 2)}, "b": {"pooled": torch.zeros(4, 3)}})
    assert out.pooled.tolist()[0] == [1.0, 1.0, 0.0, 0.0, 0.0]  # sorted: a before b
    assert out.embeddings is None


def test_metric_directions_come_from_the_registered_metric():
    reg = Registry()
    reg.register("metric", "msa", Metric(lambda: {}, {"mae": "min", "acc2_*": "max"}))
    assert reg.metric_direction("mae") == "min"
    assert reg.metric_direction("acc2_has0") == "max"
    assert reg.metric_direction("val_loss") == "min"
    with pytest.raises(RegistryError, match="No registered metric returns 'mea'.*'mae'"):
        reg.metric_direction("mea")


def test_abstract_objective_cannot_be_instantiated():
    class NoForward(Objective):
        """Forgot forward."""

    with pytest.raises(TypeError, match="abstract"):
        NoForward()
