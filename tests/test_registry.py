import pytest

from mmalign.errors import RegistryError
from mmalign.registry import Registry


class ALoss:
    """A loss for tests.

    More text that is not the summary.
    """


def test_register_get_and_list_with_filter():
    reg = Registry()
    reg.register("objective", "a-loss", ALoss, plugin="p1", distribution="d1")
    reg.register("objective", "b-loss", object, plugin="p1", summary="custom")
    reg.register("task", "a-task", object, plugin="p2")
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
        reg.register("objective", "x", object, plugin="second", distribution="dist-two")
    message = str(exc.value)
    assert "first" in message and "second" in message and "dist-one" in message


def test_same_name_different_kind_is_fine():
    reg = Registry()
    reg.register("objective", "x", ALoss)
    reg.register("fusion", "x", object)
    assert len(reg.list()) == 2


def test_unknown_name_suggests_closest():
    reg = Registry()
    reg.register("method", "late-fusion", object)
    with pytest.raises(RegistryError, match="Did you mean 'late-fusion'"):
        reg.get("method", "late-fuson")


def test_unknown_kind_is_rejected():
    with pytest.raises(RegistryError, match="Unknown kind 'objectve'.*objective"):
        Registry().register("objectve", "x", object)
