"""Losses for attribute-specific metric learning and for distillation.

* :func:`doublet_infonce`: InfoNCE on doublets (anchor, positive), the loss MCL-FIR uses
  instead of the triplet margin loss. The batch's ``2B`` embeddings are compared with
  each other (NT-Xent, as in SimCLR); for each embedding its partner is the positive
  and the other ``2B - 2`` are negatives. With ``labels``, items that share the
  anchor's value are *masked* out of the negatives (they are not negatives at all).
  Without labels this is the released code's unmasked NT-Xent, in which same-value
  items count as (false) negatives.
* :func:`triplet_loss`: the triplet margin loss on L2-normalised embeddings, with
  sampled negatives.
* :func:`semi_hard_triplet_loss`: the triplet loss as ASEN trains it, a margin on cosine
  similarity, with semi-hard negatives mined in the batch.
* :func:`embedding_distillation`: squared distance between student and teacher
  embeddings (both L2-normalised, so it is ``2 - 2 cos``).
* :func:`feature_distillation`: MSE between student and teacher encoder features.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def doublet_infonce(anchor: torch.Tensor, positive: torch.Tensor, labels: torch.Tensor | None = None,
                    temperature: float = 0.1) -> torch.Tensor:
    """Mean NT-Xent loss over the ``2B`` embeddings of ``B`` doublets.

    loss_i = -log( exp(s_i,p(i)/t) / sum_{k != i, k not masked} exp(s_ik/t) ), with s the
    dot product of (L2-normalised) embeddings and p(i) the partner of i.
    """
    if anchor.shape != positive.shape:
        raise ValueError(f"anchor {tuple(anchor.shape)} and positive {tuple(positive.shape)} differ in shape")
    b = anchor.shape[0]
    z = torch.cat([anchor, positive])
    logits = z @ z.T / temperature
    idx = torch.arange(2 * b, device=z.device)
    partner = (idx + b) % (2 * b)
    exclude = torch.eye(2 * b, dtype=torch.bool, device=z.device)
    if labels is not None:
        lab = torch.cat([labels, labels]).to(z.device)
        exclude = exclude | (lab[:, None] == lab[None, :])
        exclude[idx, partner] = False  # the partner stays: it is the positive
    logits = logits.masked_fill(exclude, float("-inf"))
    return F.cross_entropy(logits, partner)


def triplet_loss(anchor, positive, negative, margin: float = 0.2) -> torch.Tensor:
    """mean(max(0, |a - p|^2 - |a - n|^2 + margin)) on L2-normalised embeddings."""
    d_pos = (anchor - positive).pow(2).sum(-1)
    d_neg = (anchor - negative).pow(2).sum(-1)
    return F.relu(d_pos - d_neg + margin).mean()


def semi_hard_triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, labels: torch.Tensor,
                           margin: float = 0.2) -> torch.Tensor:
    """Triplet loss on cosine similarity ``s`` with in-batch semi-hard negatives (FaceNet).

    For anchor ``i`` the positive is its partner, and the negative is chosen among the
    batch's ``2B`` embeddings with another label: the most similar one that is still less
    similar than the positive and within the margin (semi-hard:
    ``s_ap - margin < s_an < s_ap``); if there is none, the most similar negative.

        loss = mean_i max(0, margin - s(a_i, p_i) + s(a_i, n_i))

    over anchors that have a negative in the batch (0 if none has).
    """
    z = torch.cat([anchor, positive])
    lab = torch.cat([labels, labels]).to(z.device)
    s_ap = (anchor * positive).sum(-1)
    sim = anchor @ z.T                                              # (B, 2B)
    neg = labels.to(z.device)[:, None] != lab[None, :]
    semi = neg & (sim < s_ap[:, None].detach()) & (sim > s_ap[:, None].detach() - margin)
    s_semi = sim.masked_fill(~semi, float("-inf")).max(1).values
    s_hard = sim.masked_fill(~neg, float("-inf")).max(1).values
    s_an = torch.where(semi.any(1), s_semi, s_hard)
    valid = neg.any(1)
    if not valid.any():
        return anchor.sum() * 0.0
    return F.relu(margin - s_ap + s_an)[valid].mean()


def embedding_distillation(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """mean_i |s_i - t_i|^2: pulls the student's embeddings to the teacher's."""
    return (student - teacher.detach()).pow(2).sum(-1).mean()


def feature_distillation(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """MSE between encoder features, as the released code's ``1e-4 * MSE`` term."""
    return F.mse_loss(student, teacher.detach())
