"""Will these components compose? Checks that run before any data is loaded.

A fusion declares the feature keys it needs per modality and the outputs it
provides (:class:`~mmalign.interfaces.Fusion`); an objective declares the model
outputs it reads (:class:`~mmalign.interfaces.Objective`). These functions compare
the declarations with what the encoders offer and what the model returns, and name
the component, the key and a fix when they do not fit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from mmalign.errors import ConfigError
from mmalign.interfaces import Objective
from mmalign.registry import Registry


def offered_keys(
    registry: Registry, refs: Mapping[str, Any], modalities: tuple[str, ...]
) -> dict[str, tuple[str, ...]]:
    """Feature keys per modality from the encoder *classes* and ``keep`` (no weights
    are loaded), for checking a fusion when the run is resolved."""
    out = {}
    for modality, ref in refs.items():
        if modality not in modalities:
            continue
        provides = registry.get("encoder", ref.name).provides
        out[modality] = tuple(k for k in provides if ref.keep is None or k in ref.keep)
    return out


def offered_layers(registry: Registry, ref: Any, where: str) -> int:
    """How many hidden states the encoder ``ref`` names returns as ``layers`` under its
    config (:meth:`~mmalign.interfaces.Encoder.layer_count`; no weights are loaded)."""
    cls, config = registry.config_of("encoder", ref, where)
    return int(cls.layer_count(config))


def check_layers(
    registry: Registry, ref: Any, modality: str, needed: int, component: str, option: str
) -> None:
    """Raise a one-line :class:`ConfigError` when ``component`` weighs ``needed`` hidden
    layers of ``modality`` (``option`` sets how many) but its encoder returns fewer.

    One layer needs no ``layers`` at all: the component reads the last one, ``tokens``.
    """
    if needed <= 1:
        return
    have = offered_layers(registry, ref, f"encoders.{modality}")
    if have == 0:
        raise ConfigError(
            f"{component} weighs the last {needed} layers, but with encoder '{ref.name}' the "
            f"{modality} features carry no 'layers': request them through the {modality} encoder's "
            f"config `layers` (e.g. --set encoders.{modality}.config.layers=...) or set "
            f"{option}=1"
        )
    if have < needed:
        raise ConfigError(
            f"{component} needs {needed} layers, the {modality} features carry {have} "
            f"(encoders.{modality}.config.layers): request more or lower `{option}`"
        )


def default_outputs(cls: Any) -> tuple[str, ...]:
    """A fusion class's outputs under its default config."""
    try:
        return tuple(cls.outputs(cls.Config()))
    except ValidationError:  # a config with required fields: the class-level declaration
        return tuple(cls.provides)


def fusions_providing(registry: Registry, key: str) -> list[str]:
    """Registered fusions whose default config provides ``key`` (e.g. ``embeddings``)."""
    return [e.name for e in registry.list("fusion") if key in default_outputs(e.obj)]


def fusion_gaps(
    cls: Any, config: Any, offered: Mapping[str, Sequence[str]]
) -> list[tuple[str, str]]:
    """``(modality, key)`` pairs the fusion needs that ``offered`` lacks."""
    gaps = []
    for modality, keys in cls.requirements(config).items():
        targets = list(offered) if modality == "*" else [modality]
        for m in targets:
            have = offered.get(m)
            gaps += [(m, k) for k in keys if have is None or k not in have]
    return gaps


def check_fusion(
    registry: Registry,
    name: str,
    cls: Any,
    config: Any,
    offered: Mapping[str, Sequence[str]],
    where: str = "fusion",
) -> None:
    """Raise a one-line :class:`ConfigError` when the fusion cannot fuse the offered
    modalities (:meth:`~mmalign.interfaces.Fusion.check_modalities`) or the encoders
    (after ``keep``) do not offer what it needs, naming the modality, key and a way out."""
    if not offered:
        raise ConfigError(f"{where} '{name}' has no modality to fuse: no encoder covers the task")
    cls.check_modalities(config, list(offered))
    for modality, key in fusion_gaps(cls, config, offered):
        if modality not in offered:
            raise ConfigError(
                f"{where} '{name}' needs the '{modality}' modality ({key}); the encoders "
                f"cover only {', '.join(offered)}."
            )
        usable = [
            e.name for e in registry.list("fusion")
            if (cfg := _default(e.obj)) is not None and not fusion_gaps(e.obj, cfg, offered)
        ]
        raise ConfigError(
            f"{where} '{name}' needs '{key}' features of '{modality}', but encoders."
            f"{modality} offers only {', '.join(offered[modality]) or 'nothing'} (its "
            f"encoder or its keep). Add '{key}' to encoders.{modality}.keep, or use a "
            f"fusion that fits: {', '.join(usable) or 'none'}"
        )


def _default(cls: Any) -> Any:
    try:
        return cls.Config()
    except ValidationError:
        return None


def check_objective(
    registry: Registry, ref: Any, outputs: Sequence[str], fusion: str, where: str = "objective"
) -> None:
    """Raise when the objective (or one of its weighted terms) reads a model output
    that the model does not return; when the missing output is the fusion's
    ``embeddings``, name the fusions that expose them."""
    cls, config = registry.config_of("objective", ref, where)
    terms = getattr(config, "terms", None)
    parts: list[tuple[str, str, Any, Any]] = []
    if isinstance(terms, list) and terms:
        for i, term in enumerate(terms):
            at = f"{where}.config.terms[{i}]"
            term_cls, term_cfg = registry.config_of("objective", term, at)
            if getattr(term_cls, "training_step", None) is not Objective.training_step:
                raise ConfigError(
                    f"{at}: objective '{term.name}' runs its own training step (several "
                    "optimizer steps or an update after each), so it cannot be a term of a "
                    f"weighted sum; use it alone with --set {where}.name={term.name}"
                )
            parts.append((term.name, at, term_cls, term_cfg))
    else:
        parts.append((ref.name, where, cls, config))
    for name, at, part_cls, part_cfg in parts:
        missing = [k for k in part_cls.needs(part_cfg) if k not in outputs]
        if not missing:
            continue
        hint = ""
        if "embeddings" in missing:
            fits = fusions_providing(registry, "embeddings")
            hint = (
                f" Fusions that expose embeddings: {', '.join(fits)}; try "
                f"--set fusion.name={fits[0]}" if fits else ""
            )
        raise ConfigError(
            f"objective '{name}' ({at}) reads '{', '.join(missing)}', which the model "
            f"does not return with fusion '{fusion}' (it returns {', '.join(outputs)})."
            f"{hint}"
        )
