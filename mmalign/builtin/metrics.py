"""Built-in metrics, each with the direction of every value it returns.

The functions are named as import strings, so registering (and ``mmalign list``)
does not import scikit-learn; they are imported on first use.
"""

from mmalign.interfaces import Metric
from mmalign.registry import RegistryView

METRICS = {
    "classification": Metric(
        "mmalign.metrics:classification",
        {"acc": "max", "f1_weighted": "max", "f1_macro": "max"},
    ),
    "binary-from-logits": Metric(
        "mmalign.metrics:binary_from_logits", {"acc2": "max", "f1": "max"}
    ),
    "sentiment-regression": Metric(
        "mmalign.metrics:sentiment_regression",
        {"mae": "min", "corr": "max", "acc7": "max", "acc2_*": "max", "f1_*": "max"},
    ),
    "retrieval-recall": Metric("mmalign.metrics:retrieval_recall", {"r@*": "max"}),
    "retrieval-tables": Metric(
        "mmalign.metrics:retrieval_tables", {"*/r@*": "max", "mean_r@*": "max"}
    ),
}


def register(registry: RegistryView) -> None:
    """Add the public metric functions to the registry."""
    for name, metric in METRICS.items():
        registry.add("metric", name, metric, summary=_summary(metric))


def _summary(metric: Metric) -> str:
    values = ", ".join(f"{v} ({d})" for v, d in metric.directions.items())
    return f"{metric.compute}: {values}"
