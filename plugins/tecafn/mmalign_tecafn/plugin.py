"""Registers the TeCaFN method and its reusable parts with mmalign."""

import mmalign
from mmalign_tecafn.fusion import CrossSampleFusion
from mmalign_tecafn.method import PAPER, TeCaFN
from mmalign_tecafn.model import PredictionHead
from mmalign_tecafn.objective import TeCaFNObjective


@mmalign.hookimpl
def mmalign_register(registry):
    """The method ``tecafn``, its fusion, head and objective."""
    registry.add("method", "tecafn", TeCaFN, summary=PAPER)
    registry.add("fusion", "tecafn-cross-sample", CrossSampleFusion)
    registry.add("head", "tecafn-mlp", PredictionHead)
    registry.add("objective", "tecafn", TeCaFNObjective)
