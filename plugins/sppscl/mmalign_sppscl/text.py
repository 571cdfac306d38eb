"""Text branch: Hierarchical Attention over the encoder's last layers, BiLSTM, projection.

Input is a frozen text encoder's features with ``"layers": [B, K, L, C]`` (the
hidden states of the requested layers) and ``"mask": [B, L]``. Token 0 is the
[CLS] token and the last real token [SEP] (BERT-style tokenisation).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from mmalign.errors import ConfigError
from mmalign.interfaces import Features
from mmalign_sppscl.heads import projection_head

Summary = Literal["cls", "mean"]


class HierarchicalAttention(nn.Module):
    """Per-sample layer weights from the layers' summary vectors (paper eq. 2).

    The summary of each layer ([CLS] state, or the masked token mean for encoders
    trained with mean pooling) is averaged over channels, passed through
    ``Linear(K,K) → ReLU → Linear(K,K) → Sigmoid`` (the authors' code) and used to
    weight that layer's word states, which are then summed over layers. Sigmoid
    weights are each in (0, 1) and do not sum to 1.
    """

    def __init__(self, layers: int, summary: Summary = "cls") -> None:
        super().__init__()
        self.summary = summary
        self.fc = nn.Sequential(
            nn.Linear(layers, layers, bias=False),
            nn.ReLU(),
            nn.Linear(layers, layers, bias=False),
            nn.Sigmoid(),
        )

    def weights(self, states: Tensor, mask: Tensor) -> Tensor:
        """``[B, K]`` layer weights from ``states: [B, K, L, C]``."""
        if self.summary == "cls":
            summary = states[:, :, 0]
        else:
            m = mask[:, None, :, None].to(states.dtype)
            summary = (states * m).sum(2) / m.sum(2).clamp(min=1)
        return self.fc(summary.mean(-1))

    def forward(self, states: Tensor, words: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """``(Σ_k w_k · words_k: [B, N, C], w: [B, K])``; ``words: [B, K, N, C]``."""
        w = self.weights(states, mask)
        return (w[:, :, None, None] * words).sum(1), w


def word_mask(mask: Tensor, special_tokens: bool, mask_padding: bool) -> tuple[Tensor, Tensor]:
    """Which positions are words: ``(keep: [L] bool, words_mask: [B, N])``.

    With ``special_tokens`` the [CLS] (position 0) and [SEP] are dropped. The
    authors slice ``[1:-1]``, which drops [SEP] only for texts filling the whole
    padded length; with ``mask_padding`` the last real token is dropped instead.
    """
    length = mask.shape[1]
    keep = torch.ones(length, dtype=torch.bool, device=mask.device)
    words = mask.clone()
    if special_tokens:
        keep[0] = False
        if mask_padding:
            last = mask.long().sum(1).clamp(min=1) - 1
            words[torch.arange(len(mask), device=mask.device), last] = False
        else:
            keep[-1] = False
    return keep, words[:, keep]


class TextBranch(nn.Module):
    """Frozen layers → HA → BiLSTM → mean over time → projection to ``dim`` (``T_p``).

    ``mask_padding=True`` runs the LSTM on packed sequences and averages only real
    tokens; ``False`` restores the authors' behaviour (LSTM over every padded
    position, padding included in the mean).
    """

    def __init__(
        self,
        in_dim: int,
        *,
        layers: int = 4,
        hidden: int = 64,
        dim: int = 32,
        dropout: float = 0.2,
        mask_padding: bool = True,
        special_tokens: bool = True,
        summary: Summary = "cls",
    ) -> None:
        super().__init__()
        self.layers = layers
        self.mask_padding = mask_padding
        self.special_tokens = special_tokens
        self.attention = HierarchicalAttention(layers, summary)
        self.lstm = nn.LSTM(in_dim, hidden, batch_first=True, bidirectional=True, bias=False)
        self.out_tokens = 2 * hidden
        self.project = projection_head(2 * hidden, dim, dropout)

    def states(self, feats: Features) -> Tensor:
        """The last ``layers`` hidden states ``[B, K, L, C]``."""
        if "layers" in feats:
            states = feats["layers"]
            if states.shape[1] < self.layers:
                raise ConfigError(
                    f"HA needs {self.layers} layers, the text features carry {states.shape[1]}; "
                    "request more through the text encoder's `layers` or lower `ha_layers`"
                )
            return states[:, -self.layers :]
        if self.layers == 1:
            return feats["tokens"][:, None]
        raise ConfigError(
            "the text features carry no 'layers': request them through the text encoder's "
            "config `layers` (e.g. --set encoders.text.config.layers=...) or set ha_layers=1"
        )

    def forward(self, feats: Features) -> dict[str, Tensor]:
        """``pooled`` = ``T_p [B, dim]``, ``tokens``/``mask`` = LSTM states, ``weights``."""
        states = self.states(feats).float()
        mask = feats["mask"].bool()
        keep, words_mask = word_mask(mask, self.special_tokens, self.mask_padding)
        words, weights = self.attention(states, states[:, :, keep], mask)
        if self.mask_padding:
            lengths = words_mask.long().sum(1).clamp(min=1).cpu()
            packed = pack_padded_sequence(words, lengths, batch_first=True, enforce_sorted=False)
            out, _ = self.lstm(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=words.shape[1])
            m = words_mask[:, :, None].to(out.dtype)
            pooled = (out * m).sum(1) / m.sum(1).clamp(min=1)
        else:
            out, _ = self.lstm(words)
            words_mask = torch.ones_like(words_mask)
            pooled = out.mean(1)
        return {
            "pooled": self.project(pooled),
            "tokens": out,
            "mask": words_mask,
            "weights": weights,
        }
