"""The retrieval model: an encoder and one embedding head per attribute.

``RetrievalModel(images, attribute)`` returns L2-normalised embeddings; two images are
similar *with respect to an attribute* when their embeddings through that attribute's
head are close.

With ``isolated=True`` every attribute also gets its own copy of the encoder, as the
released MCL-FIR code does (parameter isolation: nothing is shared, so nothing can be
forgotten, and memory grows with every attribute).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .encoders import Encoder
from .heads import MultiHead


def seeded(seed: int, factory: Callable[[], nn.Module]) -> nn.Module:
    """Build a module with its own RNG seed, leaving the global torch RNG untouched."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return factory()


class RetrievalModel(nn.Module):
    def __init__(self, encoder_factory: Callable[[], Encoder], embed_dim: int = 64,
                 isolated: bool = False, seed: int = 0, head: str = "se"):
        super().__init__()
        self.encoder_factory, self.isolated, self.seed = encoder_factory, isolated, seed
        template = seeded(seed, encoder_factory)
        self.out_channels = template.out_channels
        # its encoder reads cached trunk features, not images (a pretrained encoder's trainable Tail)
        self.on_features = bool(getattr(template, "consumes_features", False))
        self.encoder = None if isolated else template
        self.encoders = nn.ModuleDict() if isolated else None
        self.heads = MultiHead(self.out_channels, embed_dim, kind=head)

    @property
    def attributes(self) -> list[str]:
        return self.heads.attributes

    def add_attribute(self, attribute: str) -> None:
        """Grow a head (and, when isolated, an encoder copy) for a new attribute."""
        salt = sum(map(ord, attribute)) * 7919
        with torch.random.fork_rng():
            torch.manual_seed(self.seed + salt)
            self.heads.add(attribute)
        if self.isolated:
            self.encoders[attribute] = seeded(self.seed, self.encoder_factory)

    def encoder_for(self, attribute: str) -> Encoder:
        return self.encoders[attribute] if self.isolated else self.encoder

    def forward(self, images: torch.Tensor, attribute: str) -> torch.Tensor:
        return self.heads(self.encoder_for(attribute)(images), attribute)


def count_parameters(module: nn.Module | None, trainable_only: bool = False) -> int:
    if module is None:
        return 0
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
