"""Built-in methods and the reusable components they are made of."""

from mmalign.components.fusion import ConcatFusion, ProjectedConcatFusion
from mmalign.components.heads import LinearHead, MLPHead
from mmalign.components.objectives import (
    CrossEntropyObjective,
    L1RegressionObjective,
    TaskLossObjective,
    WeightedSumObjective,
)
from mmalign.interfaces import WEIGHTED_SUM
from mmalign.methods.late_fusion import LateFusion
from mmalign.registry import RegistryView


def register(registry: RegistryView) -> None:
    """Add the late-fusion baseline and its parts."""
    registry.add("fusion", "concat", ConcatFusion)
    registry.add("fusion", "projected-concat", ProjectedConcatFusion)
    registry.add("head", "linear", LinearHead)
    registry.add("head", "mlp", MLPHead)
    registry.add("objective", "cross-entropy", CrossEntropyObjective)
    registry.add("objective", "l1-regression", L1RegressionObjective)
    registry.add("objective", "task-loss", TaskLossObjective)
    registry.add("objective", WEIGHTED_SUM, WeightedSumObjective)
    registry.add("method", "late-fusion", LateFusion)
