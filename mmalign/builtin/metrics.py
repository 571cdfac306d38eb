"""Built-in metrics, registered so plugins and ``mmalign list metric`` can find them."""

from mmalign import metrics
from mmalign.registry import RegistryView


def register(registry: RegistryView) -> None:
    """Add the public metric functions to the registry."""
    registry.add("metric", "classification", metrics.classification)
    registry.add("metric", "sentiment-regression", metrics.sentiment_regression)
    registry.add("metric", "retrieval-recall", metrics.retrieval_recall)
