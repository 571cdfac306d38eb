"""Discovering and loading plugins through the ``mmalign`` entry-point group.

Built-in components live in ``mmalign.builtin`` and are loaded through the very
same entry-point path as first- and third-party plugins.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pluggy

from mmalign import hookspecs, watchdog
from mmalign.errors import MMAlignError, PluginError
from mmalign.registry import Registry

ENTRY_POINT_GROUP = "mmalign"
BLOCK_ENV = "MMALIGN_BLOCK_PLUGINS"
MODULES_ENV = "MMALIGN_PLUGINS"


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin: its entry-point name, module and distribution."""

    name: str
    module: str
    distribution: str
    version: str


def blocked_plugins() -> set[str]:
    return {p.strip() for p in os.environ.get(BLOCK_ENV, "").split(",") if p.strip()}


def _skip_hint(name: str) -> str:
    return f"to start without it, set {BLOCK_ENV}={name}"


def _load_entry_point(ep: metadata.EntryPoint) -> ModuleType:
    try:
        with watchdog.time_limit(f"plugin '{ep.name}' ({ep.value}) import", _skip_hint(ep.name)):
            return ep.load()
    except Exception as exc:  # any import failure must name the plugin
        raise PluginError(
            f"Plugin '{ep.name}' ({ep.value}) failed to import: "
            f"{type(exc).__name__}: {exc}. To start without it, set "
            f"{BLOCK_ENV}={ep.name}."
        ) from exc


def _entry_points() -> list[metadata.EntryPoint]:
    seen: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        seen.setdefault(ep.name, ep)  # a package visible twice on sys.path counts once
    return sorted(seen.values(), key=lambda ep: (ep.name != "builtin", ep.name))


_CORE_DIR = Path(__file__).resolve().parent


def _raised_by_core(exc: BaseException) -> bool:
    """Whether the innermost frame that raised ``exc`` is mmalign's own code (a plugin
    package called ``mmalign_*`` is not)."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(_CORE_DIR)


class PluginHost:
    """A pluggy manager plus the registry that its plugins filled."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.plugins: list[PluginInfo] = []

    def add_module(
        self, module: object, name: str, distribution: str = "", version: str = ""
    ) -> None:
        """Load one plugin object and run its registration hook at once."""
        try:
            self.pm.register(module, name=name)
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self.pm.unregister(name=name)
            raise PluginError(
                f"Plugin '{name}' is invalid: {exc}. To start without it, set {BLOCK_ENV}={name}."
            ) from exc
        self.plugins.append(
            PluginInfo(name, getattr(module, "__name__", repr(module)), distribution, version)
        )
        impls = [
            impl for impl in self.pm.hook.mmalign_register.get_hookimpls()
            if impl.plugin_name == name
        ]
        if not impls and callable(getattr(module, "mmalign_register", None)):
            self.pm.unregister(name=name)
            raise PluginError(
                f"Plugin '{name}' defines mmalign_register without @mmalign.hookimpl, so "
                f"it would never run. Decorate it. To start without it, set {BLOCK_ENV}={name}."
            )
        view = self.registry.view(name, distribution)
        for impl in impls:
            try:
                with watchdog.time_limit(f"plugin '{name}' (mmalign_register)", _skip_hint(name)):
                    impl.function(registry=view)
            except (Exception, SystemExit) as exc:
                if isinstance(exc, MMAlignError) and _raised_by_core(exc):
                    raise  # the registry's own messages already name the plugin
                raise PluginError(
                    f"Plugin '{name}' failed while registering: {type(exc).__name__}: {exc}. "
                    f"To start without it, set {BLOCK_ENV}={name}."
                ) from exc

    def load_entry_points(self) -> None:
        blocked = blocked_plugins()
        for ep in _entry_points():
            if ep.name in blocked:
                continue
            module = _load_entry_point(ep)
            dist = ep.dist
            self.add_module(
                module, ep.name, dist.name if dist else "", dist.version if dist else ""
            )

    def load_modules(self, names: list[str]) -> None:
        """Load plugins by module name, for plugins that are not installed as packages."""
        loaded = {p.name for p in self.plugins} | {p.module for p in self.plugins}
        for name in names:
            if name in loaded or name in blocked_plugins():
                continue
            try:
                with watchdog.time_limit(f"plugin module '{name}' import", _skip_hint(name)):
                    module = importlib.import_module(name)
            except (Exception, SystemExit) as exc:
                raise PluginError(
                    f"Plugin module '{name}' (from {MODULES_ENV}) failed to import: "
                    f"{type(exc).__name__}: {exc}. To start without it, remove it from "
                    f"{MODULES_ENV} or set {BLOCK_ENV}={name}."
                ) from exc
            self.add_module(module, name, "", "")


_host: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host, loading entry points on first use."""
    global _host
    if _host is None:
        host = PluginHost()
        host.load_entry_points()
        # the core's own components load even from an uninstalled source tree
        extra = [] if any(p.name == "builtin" for p in host.plugins) else ["mmalign.builtin"]
        extra += [m.strip() for m in os.environ.get(MODULES_ENV, "").split(",") if m.strip()]
        host.load_modules(extra)
        _host = host
    return _host


def get_registry() -> Registry:
    return get_host().registry


def reset() -> None:
    """Forget loaded plugins (tests use this after installing a plugin)."""
    global _host
    _host = None
