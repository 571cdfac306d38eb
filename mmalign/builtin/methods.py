"""Built-in methods and the reusable components they are made of."""

from mmalign.components.fusion import ConcatFusion
from mmalign.components.objectives import CrossEntropyObjective, L1RegressionObjective
from mmalign.methods.late_fusion import LateFusion
from mmalign.registry import RegistryView


def register(registry: RegistryView) -> None:
    """Add the late-fusion baseline and its parts."""
    registry.add("fusion", "concat", ConcatFusion)
    registry.add("objective", "cross-entropy", CrossEntropyObjective)
    registry.add("objective", "l1-regression", L1RegressionObjective)
    registry.add("method", "late-fusion", LateFusion)
