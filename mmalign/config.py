"""Run configuration: defaults, size presets, per-task presets, files and ``--set``.

A run is fully described by ``method``, ``task``, ``size``, ``seed`` and the
resolved method config; :func:`config_hash` of that description identifies it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from mmalign.errors import ConfigError
from mmalign.interfaces import StrictModel
from mmalign.suggest import did_you_mean


class RunConfig(StrictModel):
    """Everything that determines a run's result."""

    method: str
    task: str
    size: str
    seed: int = 0
    method_config: dict[str, Any]
    #: the user's own overrides (file and --set), kept to label variants
    overrides: dict[str, Any] = {}
    #: the absolute data folder the run reads; a resume must read the same one
    data_dir: str | None = None


def parse_value(text: str) -> Any:
    """Interpret ``--set`` values as TOML scalars/arrays, else as plain strings."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        if "," in text and not text.startswith(("[", "{")):
            return [parse_value(part) for part in text.split(",")]
        return text


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> ``{"a.b": 1, "c": "x"}``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got '{item}'")
        out[key.strip()] = parse_value(value.strip())
    return out


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def load_file(path: Path) -> dict[str, Any]:
    """Read a TOML config file into flat dotted overrides."""
    try:
        return flatten(tomllib.loads(path.read_text()))
    except FileNotFoundError:
        raise ConfigError(f"Config file {path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"Config file {path} is not UTF-8 text (byte {exc.start})") from None
    except RecursionError:
        raise ConfigError(f"Config file {path} nests too deeply to be a config") from None
    except OSError as exc:
        raise ConfigError(f"Config file {path} cannot be read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Config file {path} is not valid TOML: {exc}") from None


def _model_fields(model: type[BaseModel], path: list[str]) -> list[str]:
    """Field names valid at ``path`` inside ``model`` (for suggestions)."""
    current: Any = model
    for part in path:
        fields = getattr(current, "model_fields", {})
        if part not in fields:
            return []
        annotation = fields[part].annotation
        current = annotation if isinstance(annotation, type) else None
        if current is None:
            return []
    return list(getattr(current, "model_fields", {}).keys()) if current else []


def apply_overrides(
    model: type[BaseModel], base: dict[str, Any], overrides: dict[str, Any]
) -> dict[str, Any]:
    """Set dotted keys in a nested dict, refusing keys the model does not have."""
    tree = json.loads(json.dumps(base))
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        node = tree
        for i, part in enumerate(parts[:-1]):
            valid = _model_fields(model, parts[:i])
            if valid and part not in valid:
                raise ConfigError(
                    f"Unknown config key '{'.'.join(parts[: i + 1])}'."
                    f"{did_you_mean(part, valid)} Valid keys here: {', '.join(valid)}"
                )
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        leaf = parts[-1]
        valid = _model_fields(model, parts[:-1])
        if valid and leaf not in valid and not (leaf in node and isinstance(node, dict)):
            raise ConfigError(
                f"Unknown config key '{dotted}'.{did_you_mean(leaf, valid)} "
                f"Valid keys here: {', '.join(valid)}"
            )
        node[leaf] = copy.deepcopy(value)  # later keys must not edit the caller's value
    return tree


def validate(
    model: type[BaseModel], tree: Any, prefix: str = "", component: str = ""
) -> BaseModel:
    """Validate with messages that name the key and suggest the closest valid one.

    ``prefix`` is where ``tree`` sits in the run config (``fusion.config``) and
    ``component`` what it configures (``fusion 'concat'``), for the message.
    """
    if not isinstance(tree, dict):
        where = f"'{prefix}'" if prefix else "the config"
        raise ConfigError(f"{where} must be a table of options, got {tree!r}")
    try:
        return model.model_validate(tree)
    except ValidationError as exc:
        lines = []
        of = f" of {component}" if component else ""
        for err in exc.errors():
            parts = [prefix] if prefix else []
            loc = ".".join(parts + [str(p) for p in err["loc"]])
            if err["type"] == "extra_forbidden":
                valid = _model_fields(model, [str(p) for p in err["loc"][:-1]])
                hint = did_you_mean(str(err["loc"][-1]), valid)
                keys = ", ".join(valid) if valid else "none"
                lines.append(f"Unknown config key '{loc}'{of}.{hint} Valid keys here: {keys}")
            else:
                lines.append(f"Invalid value for '{loc}'{of}: {err['msg']}")
        raise ConfigError("; ".join(lines)) from None


def _node(tree: dict[str, Any], dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def resolve_method_config(
    config_model: type[BaseModel],
    layers: list[dict[str, Any]],
) -> BaseModel:
    """Defaults, then each layer of dotted overrides in order, validated at the end.

    A layer that swaps a component (``fusion.name=concat``) without setting its
    options drops the options earlier layers gave the old one (a size preset's
    ``fusion.config.dim`` belongs to the fusion it was written for).
    """
    tree = config_model().model_dump(mode="json")
    for layer in layers:
        before = {k: _node(tree, k) for k in layer if k.endswith(".name")}
        tree = apply_overrides(config_model, tree, layer)
        for key, old in before.items():
            base = key.removesuffix(".name")
            ref = _node(tree, base)
            own = any(k.startswith((f"{base}.config", f"{base}.terms")) for k in layer)
            if isinstance(ref, dict) and ref.get("name") != old and not own:
                ref["config"] = {}
    return validate(config_model, tree)


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(data: Any) -> str:
    """A short stable hash of any JSON-able description."""
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()[:16]
