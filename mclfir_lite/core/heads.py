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

:class:`AttentionHead` is the paper recipe's head (``kind="asen"``), after ASEN-V2 and the
released MCL-FIR code: a learnt attribute embedding conditions both attentions, spatial
first (where to look, given the attribute), then channel (which channels of the attended
vector, given the attribute), then a linear map to 128-d and L2 normalisation.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class AttributeHead(nn.Module):
    """Squeeze-and-excitation channel gate, then spatial attention (the steps above)."""

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


class AttentionHead(nn.Module):
    """ASEN-V2-style attribute-aware spatial and channel attention over a feature map.

    With ``x`` the map ``(B, C, h, w)`` and ``a`` this head's attribute embedding:

    1. spatial: ``s = softmax_positions(w_s . tanh(conv1x1(x) * W_a a))``, the attended
       vector ``v = sum_positions s * x`` (a vector input ``(B, C)`` is taken as ``v``);
    2. channel: ``g = sigmoid(MLP([v, a]))``, gated ``v * g``;
    3. ``normalize(Linear(v * g))``, ``embed_dim`` (128 in the paper).
    """

    def __init__(self, in_channels: int, embed_dim: int = 128, attr_dim: int = 512, hidden: int = 512):
        super().__init__()
        self.attribute = nn.Parameter(torch.randn(attr_dim) * attr_dim ** -0.5)
        self.map_proj = nn.Conv2d(in_channels, hidden, kernel_size=1)
        self.attr_proj = nn.Linear(attr_dim, hidden)
        self.spatial_score = nn.Conv2d(hidden, 1, kernel_size=1)
        self.channel = nn.Sequential(nn.Linear(in_channels + attr_dim, hidden), nn.ReLU(inplace=True),
                                     nn.Linear(hidden, in_channels), nn.Sigmoid())
        self.project = nn.Linear(in_channels, embed_dim)

    def spatial_attention(self, feats: torch.Tensor) -> torch.Tensor:
        """Weights over positions ``(B, h*w)``, summing to 1, for this head's attribute."""
        joint = torch.tanh(self.map_proj(feats) * self.attr_proj(self.attribute)[None, :, None, None])
        return torch.softmax(self.spatial_score(joint).flatten(1), dim=-1)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        if feats.dim() == 2:
            pooled = feats
        else:
            pooled = (feats.flatten(2) * self.spatial_attention(feats)[:, None, :]).sum(-1)   # (B, C)
        gate = self.channel(torch.cat([pooled, self.attribute.expand(len(pooled), -1).to(pooled.dtype)], dim=1))
        return F.normalize(self.project(pooled * gate), dim=-1)


HEADS = {"se": AttributeHead, "asen": AttentionHead}


class MultiHead(nn.Module):
    """A growing set of heads, one per attribute name: :class:`AttributeHead` (``kind="se"``,
    the default) or :class:`AttentionHead` (``kind="asen"``, the paper recipe)."""

    def __init__(self, in_channels: int, embed_dim: int = 64, kind: str = "se"):
        super().__init__()
        if kind not in HEADS:
            raise ValueError(f"unknown head kind {kind!r}; choose from {list(HEADS)}")
        self.in_channels, self.embed_dim, self.kind = in_channels, embed_dim, kind
        self.heads = nn.ModuleDict()

    @property
    def attributes(self) -> list[str]:
        return list(self.heads)

    def add(self, attribute: str) -> AttributeHead:
        """Add a head for a new attribute (an error if it exists) and return it."""
        if attribute in self.heads:
            raise ValueError(f"a head for attribute {attribute!r} exists already")
        self.heads[attribute] = HEADS[self.kind](self.in_channels, self.embed_dim)
        return self.heads[attribute]

    def forward(self, feats: torch.Tensor, attribute: str) -> torch.Tensor:
        if attribute not in self.heads:
            raise KeyError(f"no head for attribute {attribute!r}; heads: {self.attributes}")
        return self.heads[attribute](feats)
