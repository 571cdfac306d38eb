"""TeCaFN: text-centred cross-sample fusion with hard-negative replacement gates
(Huang, Chen, Huang, Huang, Wang; Springer-Verlag, 2024) as an mmalign plugin."""

from mmalign_tecafn.losses import (
    bidirectional_infonce,
    hard_negatives,
    random_negatives,
    replacement_gate,
    text_centred_infonce,
)

__all__ = [
    "bidirectional_infonce",
    "hard_negatives",
    "random_negatives",
    "replacement_gate",
    "text_centred_infonce",
]
