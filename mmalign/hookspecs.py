"""Hook specifications: the documented contract between mmalign and its plugins.

Every hook is an empty function whose docstring is the plugin documentation
(the pytest/pluggy convention). A plugin implements a hook by defining a
function of the same name decorated with :data:`mmalign.hookimpl`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from mmalign.registry import RegistryView

PROJECT = "mmalign"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def mmalign_register(registry: RegistryView) -> None:
    """Register components with mmalign.

    Call ``registry.add(kind, name, obj, summary=None)`` once per component, where
    ``kind`` is one of ``encoder``, ``fusion``, ``objective``, ``task``, ``method``,
    ``metric`` or ``collator`` (something that adds to batches, e.g. mask sampling).
    The registration is attributed to the calling plugin, so ``mmalign list`` can say
    where every name came from.
    """
