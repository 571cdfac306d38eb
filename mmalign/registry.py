"""One generic registry of components, keyed by (kind, name).

Plugins never see the registry itself but a :class:`RegistryView` that stamps every
registration with the plugin and distribution it came from.
"""

from __future__ import annotations

import fnmatch
import inspect
from dataclasses import dataclass
from typing import Any

from mmalign.errors import RegistryError
from mmalign.suggest import did_you_mean

KINDS = ("encoder", "fusion", "objective", "task", "method", "metric", "collator")


@dataclass(frozen=True)
class Entry:
    """One registered component and where it came from."""

    kind: str
    name: str
    obj: Any
    plugin: str
    distribution: str
    summary: str

    def as_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "name": self.name,
            "plugin": self.plugin,
            "distribution": self.distribution,
            "summary": self.summary,
        }


def first_line(obj: Any) -> str:
    """The first line of an object's docstring, the default one-line summary."""
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

    def entry(self, kind: str, name: str) -> Entry:
        try:
            return self._entries[(kind, name)]
        except KeyError:
            names = [n for k, n in self._entries if k == kind]
            raise RegistryError(
                f"No {kind} named '{name}'.{did_you_mean(name, names)} "
                f"Known {kind}s: {', '.join(sorted(names)) or 'none'}."
            ) from None

    def get(self, kind: str, name: str) -> Any:
        return self.entry(kind, name).obj

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
