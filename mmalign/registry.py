"""One generic registry of components, keyed by (kind, name).

Plugins never see the registry itself but a :class:`RegistryView` that stamps every
registration with the plugin and distribution it came from. Registration checks
that an object fits its kind (a fusion is a :class:`~mmalign.interfaces.Fusion`
subclass, a metric a :class:`~mmalign.interfaces.Metric`, ...), and
:meth:`Registry.create` is the one factory that builds any component from a
:class:`~mmalign.interfaces.ComponentRef` (timm's ``create_model`` idea).
"""

from __future__ import annotations

import fnmatch
import inspect
from dataclasses import dataclass
from typing import Any

from mmalign.errors import RegistryError
from mmalign.suggest import did_you_mean

KINDS = ("encoder", "fusion", "head", "objective", "task", "method", "metric", "collator")


def _kind_check(kind: str, obj: Any) -> str | None:
    """Why ``obj`` cannot be registered as ``kind`` (None when it can)."""
    from mmalign import interfaces as i

    bases: dict[str, type] = {
        "encoder": i.Encoder,
        "fusion": i.Fusion,
        "head": i.Head,
        "objective": i.Objective,
        "task": i.Task,
        "method": i.Method,
    }
    if kind in bases:
        base = bases[kind]
        if not (isinstance(obj, type) and issubclass(obj, base)):
            return f"must be a subclass of mmalign.{base.__name__}, got {_describe(obj)}"
        config = getattr(obj, "Config", None)
        if not (isinstance(config, type) and issubclass(config, i.StrictModel)):
            return f"must set Config to a mmalign.StrictModel subclass, got {_describe(config)}"
        if kind == "fusion":
            return _fusion_declarations(obj)
        return None
    if kind == "metric" and not isinstance(obj, i.Metric):
        return (
            "must be a mmalign.Metric(compute, directions={value: 'max'|'min'}), "
            f"got {_describe(obj)}"
        )
    if kind == "collator" and not callable(obj):
        return f"must be callable, got {_describe(obj)}"
    return None


def _fusion_declarations(cls: Any) -> str | None:
    from mmalign.interfaces import FUSION_KEYS

    needed = {k for keys in dict(cls.requires).values() for k in keys}
    if not needed <= {"pooled", "tokens"}:
        bad = ", ".join(sorted(needed - {"pooled", "tokens"}))
        return f"requires unknown feature keys ({bad}); feature keys are pooled, tokens"
    if not cls.provides or not set(cls.provides) <= set(FUSION_KEYS):
        return f"must provide some of {', '.join(FUSION_KEYS)}, got {cls.provides!r}"
    return None


def _describe(obj: Any) -> str:
    if isinstance(obj, type):
        return f"class {obj.__module__}.{obj.__qualname__}"
    return f"{type(obj).__name__} {obj!r}"[:120]


@dataclass(frozen=True)
class Entry:
    """One registered component and where it came from."""

    kind: str
    name: str
    obj: Any
    plugin: str
    distribution: str
    summary: str

    @property
    def paper(self) -> str:
        """The citation a method declares (``Method.paper``); empty for other kinds."""
        return str(getattr(self.obj, "paper", "") or "") if self.kind == "method" else ""

    def as_dict(self) -> dict[str, str]:
        out = {
            "kind": self.kind,
            "name": self.name,
            "plugin": self.plugin,
            "distribution": self.distribution,
            "summary": self.summary,
        }
        if self.paper:
            out["paper"] = self.paper
        return out


def first_line(obj: Any) -> str:
    """The first line of an object's docstring, the default one-line summary."""
    from mmalign.interfaces import Metric

    if isinstance(obj, Metric) and callable(obj.compute):
        obj = obj.compute
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


class Registry:
    """Every component mmalign knows, of every kind."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], Entry] = {}

    def register(
        self,
        kind: str,
        name: str,
        obj: Any,
        *,
        plugin: str = "<direct>",
        distribution: str = "",
        summary: str | None = None,
    ) -> Entry:
        if kind not in KINDS:
            raise RegistryError(
                f"Unknown kind '{kind}' for '{name}' (plugin {plugin}); "
                f"kinds are {', '.join(KINDS)}.{did_you_mean(kind, KINDS)}"
            )
        if not isinstance(name, str) or not name:
            raise RegistryError(f"A {kind} from plugin '{plugin}' needs a non-empty name, "
                                f"got {name!r}.")
        problem = _kind_check(kind, obj)
        if problem is not None:
            raise RegistryError(f"{kind} '{name}' (plugin {plugin}) {problem}.")
        existing = self._entries.get((kind, name))
        if existing is not None:
            raise RegistryError(
                f"{kind} '{name}' is registered twice: by plugin '{existing.plugin}' "
                f"({existing.distribution or 'no distribution'}) and by plugin '{plugin}' "
                f"({distribution or 'no distribution'}). Block one with "
                f"MMALIGN_BLOCK_PLUGINS={plugin}."
            )
        entry = Entry(kind, name, obj, plugin, distribution, summary or first_line(obj))
        self._entries[(kind, name)] = entry
        return entry

    def entry(self, kind: str, name: str, where: str = "") -> Entry:
        """The entry, or a one-line error naming ``where`` (a config key) and the choices."""
        try:
            return self._entries[(kind, name)]
        except KeyError:
            names = [n for k, n in self._entries if k == kind]
            at = f" ({where})" if where else ""
            raise RegistryError(
                f"No {kind} named '{name}'{at}.{did_you_mean(name, names)} "
                f"Known {kind}s: {', '.join(sorted(names)) or 'none'}."
            ) from None

    def get(self, kind: str, name: str) -> Any:
        return self.entry(kind, name).obj

    def config_of(self, kind: str, ref: Any, where: str = "") -> Any:
        """Look ``ref``'s name up and validate its ``config`` against the component's
        ``Config`` (errors name ``where``, e.g. ``fusion``, and suggest valid keys)."""
        from mmalign.config import validate
        from mmalign.interfaces import ComponentRef

        ref = ComponentRef.model_validate(ref) if isinstance(ref, dict) else ref
        where = where or kind
        cls = self.entry(kind, ref.name, f"{where}.name").obj
        return cls, validate(cls.Config, ref.config, prefix=f"{where}.config",
                             component=f"{kind} '{ref.name}'")

    def create(self, kind: str, ref: Any, /, *, where: str = "", **build_args: Any) -> Any:
        """Build the ``kind`` that ``ref`` names: ``cls(validated config, **build_args)``.

        ``ref`` is a :class:`~mmalign.interfaces.ComponentRef`, a dict of one, or a
        bare name. A fusion takes ``inputs=``, a head ``in_dim=`` and ``out_dim=``;
        an objective takes whatever extra arguments its own constructor documents.
        """
        if isinstance(ref, str):
            ref = {"name": ref}
        cls, config = self.config_of(kind, ref, where)
        return cls(config, **build_args)

    def metric_direction(self, value: str, where: str = "") -> str:
        """``"max"`` or ``"min"`` for a metric value, from the registered metric that
        returns it. Losses are always ``"min"``."""
        if value in ("loss", "val_loss") or value.endswith("_loss"):
            return "min"
        for entry in self.list("metric"):
            direction = entry.obj.direction(value)
            if direction is not None:
                return direction
        known = sorted({p for e in self.list("metric") for p in e.obj.directions})
        at = f" (asked by {where})" if where else ""
        raise RegistryError(
            f"No registered metric returns '{value}'{at}, so its direction is unknown."
            f"{did_you_mean(value, known)} Known values: {', '.join(known)}."
        )

    def list(self, kind: str | None = None, pattern: str | None = None) -> list[Entry]:
        """Entries of ``kind`` (all kinds when None) whose name matches a glob ``pattern``."""
        found = [
            e
            for (k, n), e in self._entries.items()
            if (kind is None or k == kind) and (pattern is None or fnmatch.fnmatch(n, pattern))
        ]
        return sorted(found, key=lambda e: (KINDS.index(e.kind), e.name))

    def names(self, kind: str) -> list[str]:
        return [e.name for e in self.list(kind)]

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._entries

    def view(self, plugin: str, distribution: str = "") -> RegistryView:
        return RegistryView(self, plugin, distribution)


class RegistryView:
    """What a plugin's ``mmalign_register`` hook receives: ``add`` stamps the plugin."""

    def __init__(self, registry: Registry, plugin: str, distribution: str) -> None:
        self._registry = registry
        self.plugin = plugin
        self.distribution = distribution

    def add(self, kind: str, name: str, obj: Any, summary: str | None = None) -> Entry:
        """Register ``obj`` as the ``kind`` called ``name``."""
        return self._registry.register(
            kind, name, obj, plugin=self.plugin, distribution=self.distribution, summary=summary
        )

    def get(self, kind: str, name: str) -> Any:
        return self._registry.get(kind, name)

    def create(self, kind: str, ref: Any, /, *, where: str = "", **build_args: Any) -> Any:
        """See :meth:`Registry.create`."""
        return self._registry.create(kind, ref, where=where, **build_args)
