"""Named knob presets of the structured embedded tasks: ``premise`` and ``control``.

Each structured generator is parameterised by how much of its information is
redundant, unique to one modality, or synergistic (the synthetic-data design of
"Quantifying & Modeling Multimodal Interactions", Liang et al., NeurIPS 2023).
Its config has a ``structure`` key naming a preset; knobs the user does not set
come from that preset, so the stored config (and the data folder's name, and the
run's provenance) always holds the concrete knob values. ``premise`` is the
setting a method's mechanism is built for; ``control`` removes that structure and
keeps everything else. Preset values are fixed in the generator's source, chosen
before any method was run on them.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import model_validator

from mmalign.errors import ConfigError
from mmalign.interfaces import StrictModel

Structure = Literal["premise", "control"]
#: per-item generating latents written next to the data (the readers ignore it)
TRUTH_FILE = "synth_truth.tsv"


class StructuredConfig(StrictModel):
    """Base of a structured task config: ``structure`` fills the knobs left unset."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}

    seed: int = 0
    structure: Structure = "premise"

    @model_validator(mode="before")
    @classmethod
    def _fill_from_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        structure = data.get("structure", "premise")
        if structure not in cls.PRESETS:
            return data  # the Literal field reports the bad value
        return {**cls.PRESETS[structure], **data}


def write_truth(path: Path, rows: list[dict[str, Any]]) -> None:
    """The generating latents of every item, one TSV row each."""
    if not rows:
        raise ConfigError(f"{path}: no items were generated")
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)


def read_truth(root: Path) -> list[dict[str, str]]:
    """The rows :func:`write_truth` wrote into a generated task's folder."""
    with (root / TRUTH_FILE).open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))
