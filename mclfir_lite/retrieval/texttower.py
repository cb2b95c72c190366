"""A mini-CLIP: an image tower and a text tower trained together, contrastively, on SynthFashion.

CLIP (Radford et al., 2021) learns one embedding space for images and texts: in a batch of
``B`` (image, caption) pairs, each image should be more similar to its own caption than to
the other ``B - 1``, and each caption to its own image. This module is that idea at toy
scale, on captions written from SynthFashion's labels (:mod:`mclfir_lite.retrieval.captions`).

* :class:`ImageTower`: the package's ``smallcnn`` encoder, average-pooled, then a linear map
  into the shared space (L2-normalised).
* :class:`TextTower`: a **bag of embeddings** over the caption's words and word pairs
  (``torch.nn.EmbeddingBag``, mean), L2-normalised. Why not a GRU or a transformer? Our
  captions are *sets* of attribute phrases whose order carries no meaning ("a red knee-length
  garment" = "a knee-length red garment"); bigrams already tell "long sleeves" from "long".
  A bag is a hundred times cheaper on a CPU, and it has a property a continual learner
  wants: a word's vector changes only when a caption contains it, so the vectors of words
  from earlier increments do not drift while later captions are learned. There is no
  shared layer after the bag on purpose (it would move every old caption's embedding).
  Unknown words are ``<unk>`` (id 0), the padding index, left out of the mean.
* :class:`ClipTextTower`: the alternative when local open_clip weights exist: CLIP's frozen
  text tower with a trainable linear map into our space. Built by :func:`build_text_tower`,
  which falls back to the bag (and says why) when the weights are missing.
* :func:`clip_loss`: the symmetric InfoNCE of CLIP, with **several positives**: a caption
  such as "a red garment" describes every red image in the batch, so all of them are its
  positives (the target is spread evenly over them), not false negatives.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from .captions import Tokenizer
from ..core.encoders import build_encoder

__all__ = ["ImageTower", "TextTower", "ClipTextTower", "MiniClip", "clip_loss", "build_text_tower"]


class ImageTower(nn.Module):
    """``smallcnn`` -> global average pool -> linear -> L2-normalised ``dim`` vector."""

    def __init__(self, dim: int = 64, width: int = 16):
        super().__init__()
        self.encoder = build_encoder("smallcnn", width=width)
        self.proj = nn.Linear(self.encoder.out_channels, dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proj(self.encoder(images).mean((2, 3))), dim=-1)


class TextTower(nn.Module):
    """Mean of word and bigram vectors (see the module docstring), L2-normalised.

    The table has ``max_vocab`` rows from the start; the tokenizer fills them as new words
    arrive (:meth:`Tokenizer.extend`), so a growing vocabulary never resizes the model.
    """

    description = "bag of word and bigram embeddings, trained here (mini-CLIP)"

    def __init__(self, dim: int = 64, max_vocab: int = 1024, tokenizer: Tokenizer | None = None):
        super().__init__()
        self.tokenizer = tokenizer or Tokenizer()
        self.max_vocab = max_vocab
        self.bag = nn.EmbeddingBag(max_vocab, dim, mode="mean", padding_idx=0)

    def extend(self, texts) -> None:
        """Learn the new words of ``texts`` (their rows start random)."""
        self.tokenizer.extend(texts)
        if len(self.tokenizer) > self.max_vocab:
            raise ValueError(f"the captions have {len(self.tokenizer)} words and word pairs; the text tower "
                             f"holds {self.max_vocab} (raise max_vocab)")

    def forward(self, texts: list[str]) -> torch.Tensor:
        ids, offsets = self.tokenizer.encode(texts)
        dev = self.bag.weight.device
        out = self.bag(torch.from_numpy(ids).to(dev), torch.from_numpy(offsets).to(dev))
        return F.normalize(out, dim=-1)


class ClipTextTower(nn.Module):
    """open_clip's frozen text tower (features cached per string) + a trainable linear map."""

    def __init__(self, clip, dim: int = 64):
        super().__init__()
        from .fusion import ClipText
        self.clip = ClipText(clip)
        self.description = f"open_clip text tower, frozen ({self.clip.description}), + a linear map"
        self.proj = nn.Linear(self.clip.dim, dim)

    def extend(self, texts) -> None:   # CLIP's tokenizer already knows every word
        pass

    def forward(self, texts: list[str]) -> torch.Tensor:
        return F.normalize(self.proj(self.clip(texts).to(self.proj.weight.device)), dim=-1)


def build_text_tower(name: str = "bow", dim: int = 64, clip_model: str = "ViT-B-32",
                     clip_weights: str = "laion2b_s34b_b79k") -> tuple[nn.Module, dict]:
    """``(tower, {"asked", "used", "why"})``. ``name``: ``bow`` (the bag of embeddings) or
    ``clip`` (open_clip's text tower when its weights are on disk; otherwise the bag, and
    ``why`` says so). Never downloads, never hangs."""
    if name not in ("bow", "clip"):
        raise ValueError(f"unknown text tower {name!r}; choose bow or clip")
    if name == "clip":
        from .zeroshot import load_clip
        clip = load_clip(clip_model, clip_weights)
        if clip[0] is not None:
            tower = ClipTextTower(clip, dim)
            return tower, {"asked": name, "used": tower.description, "why": "as asked"}
        why = f"open_clip weights not available ({clip[2]}): the bag of embeddings was used"
        return TextTower(dim), {"asked": name, "used": TextTower.description, "why": why}
    return TextTower(dim), {"asked": name, "used": TextTower.description, "why": "as asked"}


class MiniClip(nn.Module):
    """An image tower and a text tower that embed into the same ``dim``-d space."""

    def __init__(self, text_tower: nn.Module, dim: int = 64, width: int = 16):
        super().__init__()
        self.image = ImageTower(dim, width)
        self.text = text_tower

    def forward(self, images: torch.Tensor, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.image(images), self.text(texts)

    @torch.no_grad()
    def embed_images(self, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
        """Index images (no gradients, in chunks)."""
        return torch.cat([self.image(images[i:i + batch]) for i in range(0, len(images), batch)])

    @torch.no_grad()
    def embed_texts(self, texts: list[str]) -> torch.Tensor:
        return self.text(list(texts))


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, match: torch.Tensor,
              temperature: float = 0.1) -> torch.Tensor:
    """Symmetric multi-positive InfoNCE.

    ``s = image_emb @ text_emb.T / temperature``; ``match[i, j]`` is True when caption ``j``
    describes image ``i`` (the diagonal always does). Image ``i``'s target is spread evenly over
    its matching captions, and caption ``j``'s over its matching images:

        loss = 1/2 [ CE(softmax_j s_ij, match_i. / |match_i.|) + CE(softmax_i s_ij, match_.j / |match_.j|) ]

    With one positive per row (an identity ``match``) this is CLIP's loss exactly.
    """
    s = image_emb @ text_emb.T / temperature
    m = match.to(s.dtype)
    i2t = -(m / m.sum(1, keepdim=True) * F.log_softmax(s, dim=1)).sum(1).mean()
    t2i = -(m / m.sum(0, keepdim=True) * F.log_softmax(s, dim=0)).sum(0).mean()
    return (i2t + t2i) / 2
