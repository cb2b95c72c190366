"""The text side of language-conditioned queries: features, phrases, parsing, fusion."""
import numpy as np
import pytest
import torch

from mclfir_lite.core import metrics
from mclfir_lite.retrieval import textquery as tq
from mclfir_lite.core.encoders import SmallCNN
from mclfir_lite.core.model import RetrievalModel

VALUES = {"neckline": ["round", "v_neck", "boat"], "colour": ["red", "blue", "black"],
          "sleeve_length": ["short", "long"]}


def test_normalise_and_tokens():
    assert tq.normalise("V-Neck, please!") == "v neck please"
    toks = tq.tokens("Red")
    assert toks[0] == "w:red"
    assert {"<re", "red", "ed>", "<red", "red>"} <= set(toks)
    assert tq.tokens("") == []


def test_bucket_is_stable_and_in_range():
    # CRC-32, not Python's salted hash: the same token gets the same bucket in every process
    import zlib
    assert tq.bucket("red", 4096) == zlib.crc32(b"red") % 4096
    assert all(0 <= tq.bucket(t, 17) < 17 for t in tq.tokens("same neckline as this"))


def test_words_from_names():
    assert tq.attribute_words("sleeve_length") == ["sleeve length"]
    assert tq.attribute_words("baseColour") == ["base colour"]
    assert tq.attribute_words("colour", tq.SYNTH_WORDS)[:2] == ["colour", "color"]
    assert tq.value_words("v_neck") == ["v neck"]


def test_split_clauses():
    assert tq.split_clauses("same neckline as this, but in red") == ["same neckline as this", "in red"]
    assert tq.split_clauses("like this and  blue; but") == ["like this", "blue"]
    assert tq.split_clauses("abandon brand") == ["abandon brand"]  # 'and' only as a word


def test_phrase_dataset_covers_every_class():
    ph = tq.phrase_dataset(VALUES, "train")
    assert {p.attribute for p in ph if p.kind == "keep"} == set(VALUES) | {tq.ANY}
    assert {(p.attribute, p.value) for p in ph if p.kind == "change"} == \
        {(a, v) for a, vals in VALUES.items() for v in vals}
    held = tq.phrase_dataset(VALUES, "held_out")
    assert not {p.text for p in ph} & {p.text for p in held}
    with pytest.raises(ValueError, match="unknown split"):
        tq.phrase_dataset(VALUES, "test")


def test_typo_changes_one_word_deterministically():
    rng1, rng2 = np.random.default_rng(0), np.random.default_rng(0)
    a, b = tq.typo("same neckline", rng1), tq.typo("same neckline", rng2)
    assert a == b and a != "same neckline"
    assert tq.typo("a b c", rng1) == "a b c"  # no word long enough


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    model = tq.TextQueryModel(VALUES, dim=32, seed=0)
    tq.train_text_model(model, tq.phrase_dataset(VALUES, "train", typos=0.2), steps=150, seed=0)
    return model


def test_text_model_learns_and_generalises(trained):
    acc = trained.accuracy(tq.phrase_dataset(VALUES, "train"))
    assert acc["attribute"] == 1.0 and acc["value"] == 1.0
    held = trained.accuracy(tq.phrase_dataset(VALUES, "held_out"))
    assert held["attribute"] > 0.8 and held["value"] > 0.8


def test_parse_keep_and_change(trained):
    p = trained.parse("same neckline as this, but in red")
    assert p.keep == ["neckline"] and p.change == {"colour": "red"}
    # "like this" keeps every attribute that is not changed
    p = trained.parse("like this but blue")
    assert p.change == {"colour": "blue"} and p.keep == ["neckline", "sleeve_length"]


def test_fuse_is_a_weighted_sum_of_similarities():
    g = torch.Generator().manual_seed(0)
    q1, c1 = torch.randn(4, 3, generator=g), torch.randn(6, 3, generator=g)
    proto, c2 = torch.randn(5, generator=g), torch.randn(6, 5, generator=g)
    fq, fc = tq.fuse([q1, proto], [c1, c2], [0.7, 2.0])
    assert fq.shape == (4, 8) and fc.shape == (6, 8)
    torch.testing.assert_close(fq @ fc.T, 0.7 * q1 @ c1.T + 2.0 * (proto @ c2.T)[None, :].expand(4, -1))
    with pytest.raises(ValueError):
        tq.fuse([q1], [c1, c2], [1.0])


def test_joint_labels_equal_exactly_when_all_equal():
    a, b = np.array([0, 1, 1, 2]), np.array([1, 0, 1, 1])
    j = tq.joint_labels([a, b], [3, 2])
    np.testing.assert_array_equal(j, a * 2 + b)
    assert len(set(j)) == 4


def test_prototypes_and_composed_retrieval():
    model = RetrievalModel(lambda: SmallCNN(width=8), embed_dim=8, seed=0)
    for a in ("neckline", "colour"):
        model.add_attribute(a)
    images = torch.randint(0, 256, (12, 3, 32, 32), dtype=torch.uint8)
    colour = np.array([0, 1, 2] * 4)
    protos = tq.value_prototypes(model, images, colour, np.arange(9), "colour", n_values=4)
    assert protos.shape == (4, 8)
    torch.testing.assert_close(protos[:3].norm(dim=1), torch.ones(3))
    assert protos[3].abs().sum() == 0  # no row has value 3
    q, c = tq.composed_embeddings(model, images, np.array([9, 10]), np.arange(9), ["neckline"],
                                  {"colour": np.array([0, 2])}, {"colour": protos}, w_keep=0.5)
    assert q.shape == (2, 16) and c.shape == (9, 16)
    # the fused score is w_keep * (image similarity on the kept attribute) + (prototype similarity
    # on the changed one): each weight lands on its own part
    from mclfir_lite.training.evaluate import embed
    keep_sim = embed(model, images, np.array([9, 10]), "neckline") @ embed(model, images, np.arange(9), "neckline").T
    proto_sim = protos[[0, 2]] @ embed(model, images, np.arange(9), "colour").T
    torch.testing.assert_close(q @ c.T, 0.5 * keep_sim + proto_sim)
    q3, c3 = tq.composed_embeddings(model, images, np.array([9, 10]), np.arange(9), ["neckline"],
                                    {"colour": np.array([0, 2])}, {"colour": protos}, w_keep=0.5, w_change=3.0)
    torch.testing.assert_close(q3 @ c3.T, 0.5 * keep_sim + 3.0 * proto_sim)
    # text only: ranking by the prototype alone
    q2, c2 = tq.composed_embeddings(model, images, np.array([9]), np.arange(9), [], {"colour": np.array([1])},
                                    {"colour": protos})
    torch.testing.assert_close(q2[0], protos[1])
    assert 0 <= metrics.mean_average_precision(q, c, np.array([0, 2]), colour[:9]) <= 1
    with pytest.raises(ValueError, match="nothing to query"):
        tq.composed_embeddings(model, images, np.array([9]), np.arange(9), [], {}, {})
