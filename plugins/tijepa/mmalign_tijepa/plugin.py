"""Registers TI-JEPA and its reusable parts with mmalign."""

import mmalign
from mmalign_tijepa.fusion import T2ICrossAttention
from mmalign_tijepa.masks import MultiblockMaskCollator
from mmalign_tijepa.method import PAPER, TIJEPA
from mmalign_tijepa.objective import JEPAObjective


@mmalign.hookimpl
def mmalign_register(registry) -> None:  # a mmalign RegistryView
    """The ti-jepa method, its t2i cross-attention fusion, JEPA objective and mask collator."""
    registry.add("method", "ti-jepa", TIJEPA, summary=PAPER)
    registry.add("fusion", "t2i-cross-attention", T2ICrossAttention)
    registry.add("objective", "jepa", JEPAObjective)
    registry.add("collator", "multiblock-masks", MultiblockMaskCollator)
