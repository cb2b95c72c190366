"""The dataset layer: table validation, CSV round trip, protocol, samplers, increments."""
import numpy as np
import pytest
from PIL import Image

from mclfir_lite.data.table import (FashionTable, PairSampler, load_images, make_protocol, parse_increments,
                              read_table, write_table)


def tiny_table(n=40, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 255, (n, 8, 8, 3), dtype=np.uint8)
    labels = {"colour": rng.integers(0, 3, n), "shape": rng.integers(0, 2, n)}
    values = {"colour": ["red", "green", "blue"], "shape": ["a", "b"]}
    split = np.where(np.arange(n) < n * 3 // 4, "train", "test")
    return FashionTable(images, labels, values, split, name="tiny")


def test_table_validation_names_the_culprit():
    t = tiny_table()
    with pytest.raises(ValueError, match="row 3: label 7 of 'shape'"):
        lab = dict(t.labels, shape=t.labels["shape"].copy())
        lab["shape"][3] = 7
        FashionTable(t.images, lab, t.values, t.split)
    with pytest.raises(ValueError, match="unknown split"):
        FashionTable(t.images, t.labels, t.values, np.array(["train"] * 39 + ["val"]))
    with pytest.raises(ValueError, match="unknown attribute"):
        t.select(["colour", "sleeve"])


def _write_images(tmp_path, n=12):
    rows = []
    for i in range(n):
        p = tmp_path / "img" / f"{i}.png"
        p.parent.mkdir(exist_ok=True)
        Image.new("RGB", (10, 14), (i * 20, 0, 0)).save(p)
        rows.append(p)
    return rows


def test_csv_round_trip_and_load_images(tmp_path, monkeypatch):
    monkeypatch.setenv("MCLFIR_CACHE", str(tmp_path / "cache"))
    paths = _write_images(tmp_path)
    labels = {"colour": np.array([0, 1, 2, -1] * 3)}
    t = FashionTable([str(p) for p in paths], labels, {"colour": ["blue", "green", "red"]},
                     np.array(["train"] * 8 + ["test"] * 4), name="disk")
    csv_path = write_table(t, tmp_path / "table.csv")
    back = read_table(csv_path)
    assert back.values == t.values
    np.testing.assert_array_equal(back.labels["colour"], labels["colour"])  # -1 (not annotated) kept
    x = load_images(back, 16)
    assert x.shape == (12, 3, 16, 16) and x.dtype.__str__() == "torch.uint8"
    assert (tmp_path / "cache" / "images").is_dir()
    # letterboxed onto white: the padded columns are white
    assert int(x[5, :, 8, 0].min()) == 255


def test_read_table_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="table.csv"):
        read_table(tmp_path / "table.csv")
    (tmp_path / "nocol.csv").write_text("image,colour\na.png,red\n")
    with pytest.raises(ValueError, match="missing column 'split'"):
        read_table(tmp_path / "nocol.csv")
    (tmp_path / "missing.csv").write_text("image,split,colour\nnothere.png,train,red\n")
    with pytest.raises(FileNotFoundError, match="row 2: image file not found"):
        read_table(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match=r"missing attribute column\(s\) \['sleeve'\]"):
        read_table(tmp_path / "missing.csv", attributes=["sleeve"], check_files=False)


def test_corrupt_image_is_reported_by_path(tmp_path, monkeypatch):
    monkeypatch.setenv("MCLFIR_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    t = FashionTable([str(bad)], {"c": np.array([0])}, {"c": ["x"]}, np.array(["train"]))
    with pytest.raises(ValueError, match="unreadable image: .*broken.jpg"):
        load_images(t, 8)


def test_protocol_is_disjoint_and_seeded():
    t = tiny_table(200)
    p = make_protocol(t, query_fraction=0.25, seed=1)
    for attr, s in p.items():
        assert not set(s.query) & set(s.candidate)
        assert not (set(s.query) | set(s.candidate)) & set(s.train)
        assert set(s.train) == set(np.flatnonzero(t.split == "train"))
        assert len(s.query) == round(50 * 0.25)
    q = make_protocol(t, seed=1)
    assert all(np.array_equal(p[a].query, q[a].query) for a in p)
    assert not np.array_equal(make_protocol(t, seed=2)["colour"].query, p["colour"].query)
    capped = make_protocol(t, max_queries=5, max_candidates=7)
    assert len(capped["colour"].query) == 5 and len(capped["colour"].candidate) == 7


def test_protocol_errors():
    t = tiny_table(40)
    lab = dict(t.labels, shape=np.where(t.split == "train", -1, t.labels["shape"]))
    t2 = FashionTable(t.images, lab, t.values, t.split)
    with pytest.raises(ValueError, match="'shape' has no value with 2 training rows"):
        make_protocol(t2)


def test_doublets_share_value_and_differ_in_row():
    t = tiny_table(300)
    s = PairSampler(t.labels["colour"], np.flatnonzero(t.split == "train"))
    rng = np.random.default_rng(0)
    a, p = s.doublets(2000, rng)
    lab = t.labels["colour"]
    assert np.all(lab[a] == lab[p]) and np.all(a != p)
    train = set(np.flatnonzero(t.split == "train"))
    assert set(a) <= train and set(p) <= train
    # every training row shows up as an anchor (uniform over rows that have a partner)
    assert len(set(a)) > 0.95 * len(train)
    a, p, n = s.triplets(500, rng)
    assert np.all(lab[a] == lab[p]) and np.all(lab[a] != lab[n])


def test_sampler_skips_singleton_values_and_fails_without_pairs():
    labels = np.array([0, 0, 1, 2, 2, 2])
    s = PairSampler(labels, np.arange(6))
    a, p = s.doublets(100, np.random.default_rng(0))
    assert 2 not in a and 2 not in p  # row 2 is the only one with value 1
    with pytest.raises(ValueError, match="no value has two training rows"):
        PairSampler(np.array([0, 1, 2]), np.arange(3))


def test_parse_increments():
    attrs = ["a", "b", "c"]
    assert parse_increments("a,b;c", attrs) == [["a", "b"], ["c"]]
    assert parse_increments([["c"], ["a"]], attrs) == [["c"], ["a"]]
    with pytest.raises(ValueError, match=r"unknown attribute\(s\) \['z'\]"):
        parse_increments("a;z", attrs)
    with pytest.raises(ValueError, match="increment 1 .* is empty"):
        parse_increments([["a"], []], attrs)
    with pytest.raises(ValueError, match="more than one increment"):
        parse_increments("a;a", attrs)


def test_every_dataset_default_plan_exists():
    from mclfir_lite.data.table import PLANS
    from mclfir_lite.data.datasets import DEFAULT_PLAN
    for dataset, plan in DEFAULT_PLAN.items():
        assert plan in PLANS, (dataset, plan)


def test_validation_protocol_holds_out_training_rows_only():
    from mclfir_lite.data.table import AttributeSplit, validation_protocol
    prot = {"a": AttributeSplit(np.arange(100), np.arange(100, 120), np.arange(120, 200))}
    val = validation_protocol(prot, fraction=0.2, seed=1)["a"]
    assert len(val.query) + len(val.candidate) == 20 and len(val.train) == 80
    used = np.concatenate([val.train, val.query, val.candidate])
    assert sorted(used.tolist()) == list(range(100))            # only training rows, each once
    assert validation_protocol(prot, 0.2, seed=1)["a"].query.tolist() == val.query.tolist()
    with pytest.raises(ValueError):
        validation_protocol(prot, fraction=1.0)
