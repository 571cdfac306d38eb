"""Registers SPP-SCL and its reusable parts with mmalign."""

from __future__ import annotations

from typing import Any

import mmalign
from mmalign_sppscl.fusion import CrossModalFusion
from mmalign_sppscl.method import PAPER, SPPSCL
from mmalign_sppscl.objective import SPPSCLObjective


@mmalign.hookimpl
def mmalign_register(registry: Any) -> None:
    """The spp-scl method, its cross-modal fusion and its two-step objective."""
    registry.add("method", "spp-scl", SPPSCL, summary=PAPER)
    registry.add("fusion", "spp-cmf", CrossModalFusion)
    registry.add("objective", "spp-scl", SPPSCLObjective)
