"""Registers the n-modal InfoNCE method and its reusable parts with mmalign."""

import mmalign
from mmalign_infonce.evaluation import evaluate_retrieval, recall_tables
from mmalign_infonce.heads import ProjectionHeads
from mmalign_infonce.method import PAPER, InfoNCE
from mmalign_infonce.objective import NModalInfoNCE

#: every value of the recall tables is a recall (``text->image/r@10``, ``mean_any_r@5``)
RECALL = {"*r@*": "max"}


@mmalign.hookimpl
def mmalign_register(registry) -> None:  # a mmalign RegistryView
    """The method, its projection heads, its objective and the paper's recall tables."""
    registry.add("method", "infonce", InfoNCE, summary=PAPER)
    registry.add("fusion", "projection-heads", ProjectionHeads)
    registry.add("objective", "nmodal-infonce", NModalInfoNCE)
    registry.add("metric", "recall-tables", mmalign.Metric(recall_tables, RECALL))
    registry.add("metric", "retrieval-evaluation", mmalign.Metric(evaluate_retrieval, RECALL))
