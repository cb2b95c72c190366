"""Attribute-specific embedding heads: one per attribute, added as attributes arrive.

Each :class:`AttributeHead` reads the shared encoder's feature map with its own
attention, as MCL-FIR's attribute-aware modules do:

1. channel attention: a gate in (0, 1) per channel, computed from the pooled features
   (squeeze-and-excitation), so each attribute picks the channels it needs;
2. spatial attention: a softmax over positions, so each attribute looks where it
   matters (sleeves for sleeve length, the hem for length);
3. a linear projection to ``embed_dim`` and L2 normalisation, so that the dot product
   of two embeddings is their cosine similarity.

A vector input ``(B, C)`` (a pooled encoder such as CLIP's) skips the spatial step.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class AttributeHead(nn.Module):
    def __init__(self, in_channels: int, embed_dim: int = 64, reduction: int = 4):
        super().__init__()
        hidden = max(8, in_channels // reduction)
        self.channel_gate = nn.Sequential(nn.Linear(in_channels, hidden), nn.ReLU(inplace=True),
                                          nn.Linear(hidden, in_channels), nn.Sigmoid())
        self.spatial = nn.Conv2d(in_channels, 1, kernel_size=1)
        self.project = nn.Linear(in_channels, embed_dim)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        if feats.dim() == 2:
            pooled = feats * self.channel_gate(feats)
        else:
            gated = feats * self.channel_gate(feats.mean(dim=(2, 3)))[:, :, None, None]
            weights = torch.softmax(self.spatial(gated).flatten(2), dim=-1)   # (B, 1, h*w)
            pooled = (gated.flatten(2) * weights).sum(-1)                      # (B, C)
        return F.normalize(self.project(pooled), dim=-1)


class MultiHead(nn.Module):
    """A growing set of :class:`AttributeHead`, one per attribute name."""

    def __init__(self, in_channels: int, embed_dim: int = 64):
        super().__init__()
        self.in_channels, self.embed_dim = in_channels, embed_dim
        self.heads = nn.ModuleDict()

    @property
    def attributes(self) -> list[str]:
        return list(self.heads)

    def add(self, attribute: str) -> AttributeHead:
        """Add a head for a new attribute (an error if it exists) and return it."""
        if attribute in self.heads:
            raise ValueError(f"a head for attribute {attribute!r} exists already")
        self.heads[attribute] = AttributeHead(self.in_channels, self.embed_dim)
        return self.heads[attribute]

    def forward(self, feats: torch.Tensor, attribute: str) -> torch.Tensor:
        if attribute not in self.heads:
            raise KeyError(f"no head for attribute {attribute!r}; heads: {self.attributes}")
        return self.heads[attribute](feats)
