import pytest

from mmalign.config import (
    config_hash,
    load_file,
    parse_sets,
    resolve_method_config,
)
from mmalign.errors import ConfigError
from mmalign.methods.late_fusion import LateFusionConfig


def test_parse_sets_types():
    got = parse_sets(["train.lr=1e-4", "dropout=0.5", "train.patience=3", "name=abc",
                      "modalities=text,image", "flag=true", "xs=[1, 2]"])
    assert got == {"train.lr": 1e-4, "dropout": 0.5, "train.patience": 3, "name": "abc",
                   "modalities": ["text", "image"], "flag": True, "xs": [1, 2]}


def test_parse_sets_rejects_missing_equals():
    with pytest.raises(ConfigError, match="key=value"):
        parse_sets(["train.lr"])


def test_overrides_nested_and_validated():
    cfg = resolve_method_config(LateFusionConfig, [{"train.lr": 0.5}, {"dropout": 0.2}])
    assert cfg.train.lr == 0.5 and cfg.dropout == 0.2
    assert cfg.train.epochs == LateFusionConfig().train.epochs


def test_unknown_key_suggests_closest():
    with pytest.raises(ConfigError, match=r"Unknown config key 'train.lrr'.*Did you mean 'lr'"):
        resolve_method_config(LateFusionConfig, [{"train.lrr": 1}])
    with pytest.raises(ConfigError, match="Did you mean 'dropout'"):
        resolve_method_config(LateFusionConfig, [{"dropuot": 1}])


def test_bad_value_names_the_key():
    with pytest.raises(ConfigError, match="train.epochs"):
        resolve_method_config(LateFusionConfig, [{"train.epochs": "many"}])


def test_toml_file_flattens(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('dropout = 0.3\n[train]\nlr = 0.01\nepochs = 2\n')
    assert load_file(path) == {"dropout": 0.3, "train.lr": 0.01, "train.epochs": 2}
    cfg = resolve_method_config(LateFusionConfig, [load_file(path)])
    assert (cfg.dropout, cfg.train.lr, cfg.train.epochs) == (0.3, 0.01, 2)


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_file(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("x = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_file(bad)


def test_hash_is_stable_and_order_independent():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_a_field_added_after_records_keeps_their_identity_at_its_default():
    """``added_field``: at its default the field is absent from the dump (so the hash
    of a resolved config recorded before it existed is unchanged), anywhere in a nested
    config; set, it is dumped and read back; ``ALL_FIELDS`` shows it for display."""
    from typing import Literal

    from mmalign.interfaces import ALL_FIELDS, StrictModel, added_field

    class Before(StrictModel):
        width: int = 8

    class After(StrictModel):
        width: int = 8
        mode: Literal["old", "new"] = added_field("old", "added later")

    class Outer(StrictModel):
        inner: After = After()
        items: list[After] = [After()]

    assert config_hash(After().model_dump(mode="json")) == config_hash(Before().model_dump())
    assert Outer().model_dump() == {"inner": {"width": 8}, "items": [{"width": 8}]}
    changed = Outer(inner=After(mode="new"))
    assert changed.model_dump()["inner"] == {"width": 8, "mode": "new"}
    assert Outer.model_validate(changed.model_dump()) == changed
    assert Outer().model_dump(context=ALL_FIELDS)["items"] == [{"width": 8, "mode": "old"}]
    assert After().model_dump_json() == '{"width":8}'
