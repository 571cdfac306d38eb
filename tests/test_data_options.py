"""``--data-fraction`` / ``data.*`` options: a stable share of each split, validated."""

import pytest

from mmalign.errors import ConfigError
from mmalign.interfaces import Sample
from mmalign.runner import RunRequest, execute
from mmalign.store.options import take_fraction
from mmalign.testing import toy_encoders


def test_fraction_is_a_stable_share_by_sample_id():
    samples = [Sample(id=f"s{i}", inputs={}) for i in range(4000)]
    half = take_fraction(samples, 0.5)
    assert 1850 < len(half) < 2150  # a binomial(4000, 0.5) draw
    assert [s.id for s in take_fraction(list(reversed(samples)), 0.5)] == [
        s.id for s in reversed(half)]  # chosen by id, not by position
    tenth = {s.id for s in take_fraction(samples, 0.1)}
    assert tenth <= {s.id for s in half}  # nested: a smaller share is a subset
    assert take_fraction(samples, 1.0) is samples


def test_a_run_on_a_fraction_records_it(toy_plugin):
    sets = {"encoders": toy_encoders(), "train.epochs": 1, "data.fraction": 0.5}
    result = execute(RunRequest(method="late-fusion", task="toy-pairs", sets=sets, quiet=True))
    assert "data.fraction=0.5" in result.extra["variant"]
    stage = result.extra["stages"]["train"]
    assert stage["skipped"] == {"train": 0, "validation": 0, "test": 0}


@pytest.mark.parametrize("key,value,message", [
    ("data.fraction", 0.0, "fraction"), ("data.fraction", 1.5, "fraction"),
    ("data.store_dtype", "fp8", "store_dtype"), ("data.franction", 0.5, "franction")])
def test_bad_data_options_are_refused_before_any_work(toy_plugin, key, value, message):
    with pytest.raises(ConfigError, match=message):
        execute(RunRequest(method="late-fusion", task="toy-pairs", sets={key: value},
                           quiet=True))
