"""Registers the n-modal InfoNCE method and its reusable parts with mmalign."""

import mmalign
from mmalign_infonce.evaluation import evaluate_retrieval, recall_tables
from mmalign_infonce.heads import ProjectionHeads
from mmalign_infonce.method import PAPER, InfoNCE
from mmalign_infonce.objective import NModalInfoNCE


@mmalign.hookimpl
def mmalign_register(registry) -> None:  # a mmalign RegistryView
    """The method, its projection heads, its objective and the paper's recall tables."""
    registry.add("method", "infonce", InfoNCE, summary=PAPER)
    registry.add("fusion", "projection-heads", ProjectionHeads)
    registry.add("objective", "nmodal-infonce", NModalInfoNCE)
    registry.add("metric", "recall-tables", recall_tables)
    registry.add("metric", "retrieval-evaluation", evaluate_retrieval)
