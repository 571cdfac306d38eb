"""The small MLP heads shared by both branches."""

from __future__ import annotations

from torch import nn


def projection_head(in_dim: int, dim: int, dropout: float) -> nn.Sequential:
    """Projection ``M(·)`` into the D-dim sentiment space, as in the authors' code.

    ``Linear → BN → ReLU → Dropout → Linear → BN`` (their ``EncodingPart``) followed by
    ``Linear → BN → ReLU → Dropout`` (their ``Align``); the output is ``I_p``/``T_p``,
    the features the contrastive losses, the gate and the fusion all see.
    """
    return nn.Sequential(
        nn.Linear(in_dim, dim),
        nn.BatchNorm1d(dim),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(dim, dim),
        nn.BatchNorm1d(dim),
        nn.Linear(dim, dim),
        nn.BatchNorm1d(dim),
        nn.ReLU(),
        nn.Dropout(dropout),
    )
