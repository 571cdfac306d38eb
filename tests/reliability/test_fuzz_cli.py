"""Random malformed ``--set`` values and config files, fed to the CLI in-process: every
one ends in a clean error (exit 2, one line, no traceback) before any training.

Bounded example counts keep this in the default suite; the cases are built so that
each is invalid (a value outside its range, of the wrong type, an unknown key, broken
TOML), so exit 2 is the only right answer.
"""

from __future__ import annotations

import string
import tomllib

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.main import get_command

from mmalign.cli import app
from mmalign.config import flatten

#: typer's click command, built once (typer.testing.CliRunner rebuilds it per call)
COMMAND = get_command(app)

#: (key, a strategy of values that key must refuse)
BAD_VALUES = {
    "train.epochs": st.one_of(st.integers(max_value=0), st.just("ten"), st.just("2.5")),
    "train.batch_size": st.one_of(st.integers(max_value=0), st.just("[64]"), st.just("1e-400")),
    "train.eval_batch_size": st.one_of(st.integers(max_value=0), st.just("1e-400")),
    "train.lr": st.one_of(st.floats(max_value=0), st.just("nan"), st.just("inf"),
                          st.just("-inf"), st.floats(min_value=101, allow_infinity=False),
                          st.just("'fast'")),
    "train.weight_decay": st.one_of(st.floats(max_value=-1e-9), st.just("nan")),
    "train.grad_clip": st.one_of(st.floats(max_value=0), st.just("nan")),
    "train.patience": st.integers(max_value=0),
    "train.gamma": st.one_of(st.floats(max_value=0), st.floats(min_value=1.01), st.just("nan")),
    "train.step_size": st.integers(max_value=0),
    "train.warmup_epochs": st.integers(max_value=-1),
    "train.optimizer": st.text(string.ascii_lowercase, min_size=1).filter(
        lambda s: s not in ("adamw", "adam", "sgd")),
    "train.monitor": st.text(string.ascii_lowercase + "_", min_size=1).filter(
        lambda s: s not in ("val_loss", "acc", "f1_weighted", "f1_macro", "last")),
    "dropout": st.one_of(st.floats(min_value=1.0), st.floats(max_value=-1e-9), st.just("nan")),
}
KEY_CHARS = string.ascii_letters + string.digits + "._-[]/\\'\"{}=ü😀 "


def _value_text(value: object) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _invoke(home, args):
    return CliRunner().invoke(COMMAND, ["run", "late-fusion", "--task", "toy-pairs", "-q", *args],
                              env={"MMALIGN_HOME": str(home)})


def _assert_clean(result, home):
    out = result.output
    assert result.exit_code == 2, (result.exit_code, out, result.exception)
    assert "Traceback" not in out and out.startswith("error: "), out
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())


FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(item=st.sampled_from(sorted(BAD_VALUES)).flatmap(
    lambda key: BAD_VALUES[key].map(lambda v: f"{key}={_value_text(v)}")))
def test_out_of_range_set_values(toy_plugin, mmalign_home, item):
    _assert_clean(_invoke(mmalign_home, ["--set", item]), mmalign_home)


@FUZZ
@given(key=st.text(KEY_CHARS, min_size=1, max_size=20).filter(
    lambda k: "=" not in k and k.strip() and not k.strip().startswith(("task.", "encoders"))
    and k.strip() not in ("dropout", "train")))
def test_unknown_or_malformed_keys(toy_plugin, mmalign_home, key):
    _assert_clean(_invoke(mmalign_home, ["--set", f"{key}=1"]), mmalign_home)


@FUZZ
@given(body=st.one_of(
    st.text(string.printable, max_size=60).filter(lambda t: "=" in t or "[" in t),
    st.sampled_from(sorted(BAD_VALUES)).flatmap(
        lambda key: BAD_VALUES[key].map(
            lambda v: "{} = {}".format(key.split(".")[-1], _value_text(v)) if "." not in key
            else "[train]\n{} = {}".format(key.split(".")[1], _value_text(v)))),
    st.binary(min_size=1, max_size=40).map(lambda b: b.decode("latin-1")),
))
def test_malformed_config_files(toy_plugin, mmalign_home, tmp_path_factory, body):
    path = tmp_path_factory.mktemp("cfg") / "fuzz.toml"
    path.write_text(body, encoding="latin-1")
    result = _invoke(mmalign_home, ["--config", str(path)])
    if result.exit_code == 0:  # only a valid TOML file that sets no key may be accepted
        assert flatten(tomllib.loads(body)) in ({}, {"train": {}}), body
        return
    _assert_clean(result, mmalign_home)
