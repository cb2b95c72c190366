"""Losses against hand-worked values, the EMA update, and head growth."""
import math

import pytest
import torch

from mclfir_lite.methods.mclfir import EMATeacher
from mclfir_lite.core.heads import AttributeHead, MultiHead
from mclfir_lite.core.losses import doublet_infonce, embedding_distillation, feature_distillation, triplet_loss
from mclfir_lite.core.model import RetrievalModel
from mclfir_lite.core.encoders import SmallCNN

E1, E2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])


def test_infonce_unmasked_hand_value():
    # two doublets (e1,e1) and (e2,e2), temperature 1. For the first anchor the row of
    # similarities to the other three is [e2: 0, partner e1: 1, e2: 0]:
    # loss = -log(e^1 / (e^1 + e^0 + e^0)) = log(1 + 2/e); all four rows are alike.
    a, p = torch.stack([E1, E2]), torch.stack([E1, E2])
    expected = math.log(1 + 2 / math.e)
    assert doublet_infonce(a, p, temperature=1.0).item() == pytest.approx(expected, abs=1e-6)


def test_infonce_masks_same_value_items():
    # both doublets share a value: with labels, the other doublet is no negative at all,
    # so only the partner is left in each row and the loss is -log(1) = 0.
    a, p = torch.stack([E1, E2]), torch.stack([E1, E2])
    assert doublet_infonce(a, p, torch.tensor([3, 3]), temperature=1.0).item() == pytest.approx(0.0, abs=1e-6)
    # different values: nothing is masked, so it equals the unmasked loss
    masked = doublet_infonce(a, p, torch.tensor([0, 1]), temperature=1.0)
    assert masked.item() == pytest.approx(doublet_infonce(a, p, temperature=1.0).item())


def test_infonce_temperature_and_shape_check():
    a, p = torch.stack([E1, E2]), torch.stack([E1, E2])
    # temperature 0.5 doubles the logits: log(1 + 2 e^-2)
    assert doublet_infonce(a, p, temperature=0.5).item() == pytest.approx(math.log(1 + 2 * math.exp(-2)), abs=1e-6)
    with pytest.raises(ValueError, match="differ in shape"):
        doublet_infonce(a, p[:1])


def test_triplet_hand_values():
    a, p, n = E1[None], E1[None], E2[None]
    assert triplet_loss(a, p, n, margin=0.2).item() == pytest.approx(0.0)      # 0 - 2 + 0.2 < 0
    assert triplet_loss(a, E2[None], E1[None], margin=0.2).item() == pytest.approx(2.2)  # 2 - 0 + 0.2


def test_distillation_values():
    s, t = torch.stack([E1, E2]), torch.stack([E1, E1])
    assert embedding_distillation(s, t).item() == pytest.approx(1.0)  # (0 + 2) / 2
    assert feature_distillation(torch.ones(2, 3), torch.zeros(2, 3)).item() == pytest.approx(1.0)
    s.requires_grad_(True)
    t = t.clone().requires_grad_(True)
    embedding_distillation(s, t).backward()
    assert t.grad is None  # the teacher gets no gradient


def _model():
    return RetrievalModel(lambda: SmallCNN(width=8), embed_dim=4, seed=0)


def test_ema_update_is_the_moving_average():
    student = _model()
    student.add_attribute("a")
    teacher = EMATeacher(student, decay=0.9)
    with torch.no_grad():
        for p in student.parameters():
            p.zero_()
        for p in teacher.model.parameters():
            p.fill_(1.0)
        for p in student.parameters():
            p.fill_(2.0)
    teacher.update(student)   # 0.9 * 1 + 0.1 * 2 = 1.1
    teacher.update(student)   # 0.9 * 1.1 + 0.1 * 2 = 1.19
    for p in teacher.model.parameters():
        assert torch.allclose(p, torch.full_like(p, 1.19))
    assert not any(p.requires_grad for p in teacher.model.parameters())


def test_ema_copies_new_heads_and_rejects_bad_decay():
    student = _model()
    student.add_attribute("a")
    teacher = EMATeacher(student, decay=0.99)
    student.add_attribute("b")
    teacher.update(student)
    assert teacher.model.attributes == ["a", "b"]
    for (n1, p1), (n2, p2) in zip(student.heads.heads["b"].named_parameters(),
                                  teacher.model.heads.heads["b"].named_parameters()):
        assert torch.allclose(p1, p2)
    with pytest.raises(ValueError, match="decay"):
        EMATeacher(student, decay=1.5)


def test_heads_grow_and_are_normalised():
    mh = MultiHead(in_channels=16, embed_dim=8)
    mh.add("sleeve")
    mh.add("colour")
    assert mh.attributes == ["sleeve", "colour"]
    with pytest.raises(ValueError, match="exists already"):
        mh.add("sleeve")
    with pytest.raises(KeyError, match="neckline"):
        mh(torch.randn(2, 16, 4, 4), "neckline")
    for x in (torch.randn(3, 16, 4, 4), torch.randn(3, 16)):
        z = mh(x, "colour")
        assert z.shape == (3, 8)
        assert torch.allclose(z.norm(dim=-1), torch.ones(3), atol=1e-5)
    # different heads give different embeddings of the same features
    x = torch.randn(3, 16, 4, 4)
    assert not torch.allclose(mh(x, "sleeve"), mh(x, "colour"))


def test_isolated_model_has_one_encoder_per_attribute():
    m = RetrievalModel(lambda: SmallCNN(width=8), embed_dim=4, isolated=True, seed=0)
    m.add_attribute("a")
    m.add_attribute("b")
    assert set(m.encoders) == {"a", "b"}
    assert m.encoder_for("a") is not m.encoder_for("b")
    # same initial weights (a copy of the same backbone, as the released code does)
    for p, q in zip(m.encoders["a"].parameters(), m.encoders["b"].parameters()):
        assert torch.equal(p, q)
    assert m(torch.zeros(2, 3, 32, 32, dtype=torch.uint8), "b").shape == (2, 4)


def test_semi_hard_triplet_picks_the_semi_hard_negative():
    import torch.nn.functional as F
    from mclfir_lite.core.losses import semi_hard_triplet_loss
    # one anchor (label 0) with its positive at cos 0.8; negatives (label 1) at cos 0.9 (hard),
    # 0.7 (semi-hard: within the 0.2 margin below the positive) and 0.0 (easy)
    def unit(c):
        return torch.tensor([[c, (1 - c * c) ** 0.5]])
    a = torch.cat([unit(1.0), unit(0.9), unit(0.7), unit(0.0)])
    p = torch.cat([unit(0.8), unit(0.9), unit(0.7), unit(0.0)])
    labels = torch.tensor([0, 1, 1, 1])
    loss_all = semi_hard_triplet_loss(a, p, labels, margin=0.2)
    # anchor 0: s_ap = 0.8; its semi-hard negative is at 0.7 (not the hard 0.9, not the easy 0.0)
    z, lab2 = torch.cat([a, p]), torch.cat([labels, labels])
    expected = []
    for i in range(4):                     # a plain loop, the FaceNet rule written out
        s_ap = float(a[i] @ p[i])
        negs = [float(a[i] @ z[j]) for j in range(8) if lab2[j] != labels[i]]
        semi = [s for s in negs if s_ap - 0.2 < s < s_ap]
        s_an = max(semi) if semi else max(negs)
        expected.append(max(0.0, 0.2 - s_ap + s_an))
    assert loss_all.item() == pytest.approx(sum(expected) / 4, abs=1e-5)
    assert expected[0] == pytest.approx(0.1, abs=1e-5)
    # only one label in the batch: no negative, loss 0 (and differentiable)
    z = semi_hard_triplet_loss(a, p, torch.zeros(4, dtype=torch.long))
    assert z.item() == 0.0


def test_ema_averages_batchnorm_statistics_instead_of_copying():
    from mclfir_lite.methods.mclfir import EMATeacher
    student = torch.nn.Sequential(torch.nn.BatchNorm1d(3))
    teacher = EMATeacher(student, decay=0.5)
    with torch.no_grad():
        student[0].running_mean.fill_(2.0)
    teacher.update(student)
    assert torch.allclose(teacher.model[0].running_mean, torch.full((3,), 1.0))   # 0.5 * 0 + 0.5 * 2
    assert teacher.model[0].num_batches_tracked == student[0].num_batches_tracked
