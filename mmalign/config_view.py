"""The resolved configuration of a method, as ``mmalign config`` prints it.

Every swappable component (a :class:`~mmalign.interfaces.ComponentRef`) is shown
with all of its own options, defaults included, and the registered choices for
it. The TOML form is itself a valid ``--config`` file: the run description is in
comments, the method's options are tables and the task's are under ``[task]``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mmalign.interfaces import ALL_FIELDS, ComponentRef
from mmalign.registry import Registry
from mmalign.runner.compose import make_task
from mmalign.runner.run import RunRequest, resolve


def _expand(
    registry: Registry, value: Any, tree: Any, path: str, components: list[dict[str, Any]]
) -> None:
    """Replace each component ref's ``config`` in ``tree`` by its full validated options."""
    if isinstance(value, ComponentRef) and value.kind is not None:
        cls, sub = registry.config_of(value.kind, value, path)
        tree["config"] = sub.model_dump(mode="json", context=ALL_FIELDS)
        if not tree.get("terms"):
            tree.pop("terms", None)  # the weighted-sum shorthand, already expanded
        components.append({
            "key": path,
            "kind": value.kind,
            "name": value.name,
            "choices": [e.name for e in registry.list(value.kind)],
        })
        _expand(registry, sub, tree["config"], f"{path}.config", components)
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            if name not in tree:  # excluded from the dump (execution-only, e.g. num_workers)
                continue
            _expand(registry, getattr(value, name), tree[name],
                    f"{path}.{name}" if path else name, components)
    elif isinstance(value, dict):
        for key, item in value.items():
            _expand(registry, item, tree[key], f"{path}.{key}" if path else str(key), components)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _expand(registry, item, tree[i], f"{path}[{i}]", components)


def resolved_config(
    registry: Registry,
    method: str,
    size: str | None,
    task: str | None,
    sets: dict[str, Any],
    config_file: Path | None = None,
) -> dict[str, Any]:
    """The run description, the method config with every component expanded, the task's
    options and the list of swappable components (resolved exactly as ``run`` does)."""
    _, run_cfg, cfg = resolve(RunRequest(method=method, task=task, size=size, sets=sets,
                                         config_file=config_file))
    tree = cfg.model_dump(mode="json", context=ALL_FIELDS)
    components: list[dict[str, Any]] = []
    _expand(registry, cfg, tree, "", components)
    task_obj = make_task(registry, run_cfg.task, run_cfg.method_config["task"], None)
    return {
        "method": run_cfg.method,
        "task": run_cfg.task,
        "size": run_cfg.size,
        "config": tree,
        "task_config": task_obj.config.model_dump(mode="json", context=ALL_FIELDS),
        "components": components,
    }


def render_json(view: dict[str, Any]) -> str:
    return json.dumps(view, indent=2)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if value == value and abs(value) != float("inf") else json.dumps(
            str(value))
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        items = [f"{_key(k)} = {_toml_value(v)}" for k, v in value.items() if v is not None]
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def _key(key: str) -> str:
    bare = key.replace("-", "").replace("_", "").isalnum()
    return key if bare else json.dumps(key)


def _table(tree: dict[str, Any], path: list[str], notes: dict[str, str], out: list[str]) -> None:
    scalars = {k: v for k, v in tree.items() if not (isinstance(v, dict) and v)}
    tables = {k: v for k, v in tree.items() if isinstance(v, dict) and v}
    dotted = ".".join(path)
    if path and (scalars or not tables):
        out.append("")
        if dotted in notes:
            out.append(notes[dotted])
        out.append(f"[{'.'.join(_key(p) for p in path)}]")
    for key, value in scalars.items():
        if value is None:
            out.append(f"# {_key(key)} is unset (None)")
        else:
            out.append(f"{_key(key)} = {_toml_value(value)}")
    for key, value in tables.items():
        _table(value, [*path, key], notes, out)


def render_toml(view: dict[str, Any]) -> str:
    """A ``--config`` file: the description in comments, then the options."""
    notes = {
        c["key"]: f"# {c['kind']} '{c['name']}'; registered: {', '.join(c['choices'])}"
        for c in view["components"]
        if "[" not in c["key"]
    }
    out = [
        f"# mmalign config {view['method']} --size {view['size']} --task {view['task']}",
        "# swappable components (--set KEY.name=NAME, options under KEY.config):",
        *(f"#   {c['key']}: {c['kind']} '{c['name']}'" for c in view["components"]),
    ]
    _table(view["config"], [], notes, out)
    if view["task_config"]:
        _table({"task": view["task_config"]}, [], notes, out)
    return "\n".join(out) + "\n"
