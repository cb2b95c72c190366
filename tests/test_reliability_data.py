"""Reliability of the data layer (issue 25): files from other tools, attributes that cannot
be scored, caches that heal, a data fingerprint that follows the data and not the folder,
memory checked before eager loading, and --no-progress reaching the preparer.

Fixtures are tiny tables and Fashion-Product-Images folders written here with PIL."""
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mclfir_lite.data import table as data
from mclfir_lite.data import datasets
from mclfir_lite.retrieval import features
from mclfir_lite.data import imagedata
from mclfir_lite.data import realdata
from mclfir_lite.cli.main import main
from mclfir_lite.data.table import load_images, make_protocol, read_table

pytestmark = pytest.mark.usefixtures("isolated_cache", "one_thread")

DEMO = ["demo", "--quick", "--steps", "2", "--image-size", "16", "--strategies", "finetune", "--no-progress"]
COLOURS = {"red": (220, 20, 20), "blue": (20, 20, 220), "green": (20, 200, 20)}
PLANTED = []


def _png(path: Path, rgb) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 16), rgb).save(path)


def write_table(folder: Path, n: int = 24, extra: str = "material", one_value: str = "cotton",
                encoding: str = "utf-8") -> Path:
    """A table CSV with ``colour`` (two values) and ``extra``, which has one value only."""
    rows = ["image,split,colour," + extra]
    for i in range(n):
        colour = ("red", "blue")[i % 2]
        _png(folder / "img" / f"{i}.png", COLOURS[colour])
        rows.append(f"img/{i}.png,{'test' if i % 3 == 0 else 'train'},{colour},{one_value}")
    csv = folder / "table.csv"
    csv.write_bytes(("\n".join(rows) + "\n").encode(encoding))
    return csv


def write_fpi(root: Path, n: int = 40, images_dir: Path | None = None) -> Path:
    """A small Fashion-Product-Images folder (styles.csv + images/<id>.jpg)."""
    images_dir = images_dir or root / "images"
    lines = ["id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName"]
    for i in range(1, n + 1):
        colour = ("Red", "Blue")[i % 2]
        sub = ("Topwear", "Shoes")[(i // 2) % 2]
        lines.append(f"{i},{('Men', 'Women')[(i // 3) % 2]},Apparel,{sub},Tshirts,{colour},Summer,2012,"
                     f"{('Casual', 'Sports')[(i // 5) % 2]},Item {i}")
        images_dir.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (12, 16), COLOURS[colour.lower()]).save(images_dir / f"{i}.jpg", format="JPEG")
    root.mkdir(parents=True, exist_ok=True)
    (root / "styles.csv").write_text("\n".join(lines) + "\n")
    return root


def counting(monkeypatch):
    calls = []
    real = realdata.PREPARERS["fashion-product-images"]
    monkeypatch.setitem(realdata.PREPARERS, "fashion-product-images",
                        lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    return calls


def prepared(root, **kw):
    return realdata.load_prepared("fashion-product-images", root, quiet=True, min_count=2,
                                  attributes=("subCategory", "baseColour"), **kw)


# ---------------------------------------------------------------------------- one-valued attributes

def test_a_one_valued_attribute_is_removed_with_a_line_naming_it(tmp_path, capsys):
    table = read_table(write_table(tmp_path / "t"))
    assert table.attributes == ["colour"] and "material" in table.removed_attributes
    err = capsys.readouterr().err
    assert "'material'" in err and "AP 1" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(ValueError, match="'material' cannot be evaluated"):
        read_table(tmp_path / "t" / "table.csv", attributes=["colour", "material"])


def test_the_demo_refuses_a_one_valued_attribute_asked_for_and_runs_without_it(tmp_path, capsys):
    csv = write_table(tmp_path / "t")
    base = [*DEMO, "--dataset", "table", "--data-dir", str(csv)]
    assert main([*base, "--increments", "colour;material", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "'material'" in err and "removed" in err and "unknown attribute" not in err
    assert main([*base, "--increments", "colour", "--out", str(tmp_path / "b")]) == 0
    res = json.loads((tmp_path / "b" / "results.json").read_text())
    assert res["attributes"] == ["colour"]


def test_candidates_of_one_value_are_refused_by_the_protocol(tmp_path):
    table = read_table(write_table(tmp_path / "t"), quiet=True)
    lab = table.labels["colour"].copy()
    lab[table.split == "test"] = 0  # two values, but every test row has the first: AP 1 whatever the ranking
    one = data.FashionTable(table.images, {"colour": lab}, table.values, table.split)
    with pytest.raises(ValueError, match="all .* candidates have the value 'blue'.*AP 1"):
        make_protocol(one, seed=0)


# ---------------------------------------------------------------------------- files from other tools

def test_a_table_saved_by_excel_with_a_bom_is_read(tmp_path, capsys):
    table = read_table(write_table(tmp_path / "t", encoding="utf-8-sig"))
    assert table.attributes == ["colour"] and len(table) == 24


def test_a_latin1_table_names_file_and_line_and_says_utf8(tmp_path, capsys):
    csv = write_table(tmp_path / "t", one_value="cr\u00e8me", encoding="latin-1")
    with pytest.raises(ValueError) as err:
        read_table(csv)
    msg = str(err.value)
    assert str(csv) in msg and "line 2" in msg and "0xe8" in msg and "UTF-8" in msg
    assert main([*DEMO, "--dataset", "table", "--data-dir", str(csv), "--increments", "colour",
                 "--out", str(tmp_path / "r")]) == 2
    out = capsys.readouterr().err
    assert "line 2" in out and "Traceback" not in out and len(out.strip().splitlines()) == 1


# ---------------------------------------------------------------------------- caches

@pytest.mark.parametrize("damage", ["truncated", "pickle", "other shape"])
def test_a_damaged_image_cache_is_named_and_rebuilt(tmp_path, capsys, damage):
    table = read_table(write_table(tmp_path / "t"), quiet=True)
    good = load_images(table, 16)
    cache = data.image_cache_path(table, 16)
    if damage == "truncated":
        cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])
    elif damage == "pickle":
        cache.write_bytes(pickle.dumps(Payload(str(tmp_path / "ran"))))
    else:
        np.save(cache, np.zeros((3, 3, 16, 16), dtype=np.uint8))
    capsys.readouterr()
    assert torch.equal(load_images(table, 16), good)
    err = capsys.readouterr().err
    assert str(cache) in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "ran").exists()  # the planted payload never ran
    assert torch.equal(load_images(table, 16), good) and capsys.readouterr().err == ""  # healed
    # the memory-mapped cache of --lazy-images builds: checked the same way
    cache.write_bytes(cache.read_bytes()[:200])
    images = imagedata.open_images(table, 16, cache=True)
    assert torch.equal(images[np.arange(len(table))], good) and str(cache) in capsys.readouterr().err


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_rebuild_works_for_a_table_and_heals_a_damaged_cache_in_the_demo(tmp_path, capsys):
    csv = write_table(tmp_path / "t")
    base = [*DEMO, "--dataset", "table", "--data-dir", str(csv), "--increments", "colour"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    cache = data.image_cache_path(read_table(csv, quiet=True), 16)
    first = json.loads((tmp_path / "a" / "results.json").read_text())["strategies"]["finetune"]["final_meanap"]
    cache.write_bytes(b"\x93NUMPY garbage")
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "b")]) == 0
    assert str(cache) in capsys.readouterr().err
    before = cache.stat().st_mtime_ns
    assert main([*base, "--out", str(tmp_path / "c"), "--rebuild"]) == 0  # refused before, for a table CSV
    assert cache.stat().st_mtime_ns != before
    for run in "bc":  # the same numbers from a healed or rebuilt cache
        res = json.loads((tmp_path / run / "results.json").read_text())["strategies"]["finetune"]
        assert res["final_meanap"] == first


def test_rebuild_renders_synthfashion_again(tmp_path):
    t1 = datasets.synthfashion_table(n=30, size=16, seed=3)
    path = next((tmp_path / "cache" / "synthfashion").glob("*.npz"))
    before = path.stat().st_mtime_ns
    t2 = datasets.load_dataset("synthfashion", n=30, size=16, seed=3, rebuild=True)
    assert path.stat().st_mtime_ns != before and np.array_equal(t1.images, t2.images)


@pytest.mark.parametrize("damage", ["truncated", "other shape"])
def test_a_damaged_render_cache_is_named_and_rendered_again(tmp_path, capsys, damage):
    t1 = datasets.synthfashion_table(n=30, size=16, seed=3)
    path = next((tmp_path / "cache" / "synthfashion").glob("*.npz"))
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:300])
    else:
        with np.load(path) as z:
            arrays = dict(z)
        arrays["images"] = arrays["images"][:, :8]
        with open(path, "wb") as f:
            np.savez(f, **arrays)
    t2 = datasets.synthfashion_table(n=30, size=16, seed=3)
    assert np.array_equal(t1.images, t2.images)
    err = capsys.readouterr().err
    assert str(path) in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("damage", ["wrong shape", "nan"])
def test_a_damaged_feature_cache_is_recomputed(tmp_path, capsys, damage):
    from mclfir_lite.core.encoders import SmallCNN
    torch.manual_seed(0)
    enc = SmallCNN(width=8)
    x = torch.randint(0, 256, (10, 3, 16, 16), dtype=torch.uint8)
    good = features.encode_dataset(enc, x, ["k"], progress=False)
    path = features.feature_path(features.feature_key(enc, x, ["k"]))
    bad = torch.zeros(10, 7) if damage == "wrong shape" else good.clone().fill_(float("nan"))
    torch.save({"features": bad}, path)
    again = features.encode_dataset(enc, x, ["k"], progress=False)
    assert torch.equal(again, good)
    err = capsys.readouterr().err
    assert str(path) in err and "recomputing" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("damage", ["report.json", "table.csv", "watched_images.txt"])
def test_a_damaged_prepared_table_is_named_and_prepared_again(tmp_path, capsys, monkeypatch, damage):
    root = write_fpi(tmp_path / "fpi")
    t1 = prepared(root)
    calls = counting(monkeypatch)
    out = realdata.prepared_dir("fashion-product-images", root, min_count=2, attributes=("subCategory", "baseColour"))
    path = out / damage
    if damage == "watched_images.txt":
        path.unlink()
    else:
        path.write_text(path.read_text()[:25])
    capsys.readouterr()
    t2 = prepared(root)
    assert calls == [1] and t2.images == t1.images
    assert str(path) in capsys.readouterr().err


# ---------------------------------------------------------------------------- the data fingerprint

def test_other_files_in_the_data_folder_change_nothing(tmp_path, monkeypatch):
    root = write_fpi(tmp_path / "fpi")
    t1 = prepared(root)
    fp1 = datasets.fingerprint(t1)
    calls = counting(monkeypatch)
    (root / "notes.txt").write_text("my notes")
    (root / "runs" / "demo").mkdir(parents=True)  # --out inside --data-dir
    (root / "runs" / "demo" / "results.json").write_text("{}")
    t2 = prepared(root)
    assert calls == [] and datasets.fingerprint(t2) == fp1
    # an image the annotations name that changes does count
    Image.new("RGB", (12, 16), (1, 2, 3)).save(root / "images" / "3.jpg", format="JPEG")
    t3 = prepared(root)
    assert calls == [1] and datasets.fingerprint(t3) != fp1


def test_a_symlinked_images_folder_is_followed(tmp_path, monkeypatch):
    elsewhere = tmp_path / "disk" / "images"
    root = write_fpi(tmp_path / "fpi", images_dir=elsewhere)
    os.symlink(elsewhere, root / "images")
    (elsewhere / "5.jpg").write_bytes(b"not a jpeg")  # corrupt: left out
    t1 = prepared(root)
    assert not any(p.endswith("/5.jpg") for p in t1.images)
    Image.new("RGB", (12, 16), (9, 9, 9)).save(elsewhere / "5.jpg", format="JPEG")  # repaired behind the link
    t2 = prepared(root)
    assert any(p.endswith("/5.jpg") for p in t2.images)  # prepared again, not the stale table


def test_a_table_fingerprint_follows_its_images_not_its_folder(tmp_path):
    csv = write_table(tmp_path / "t")
    fp = datasets.fingerprint(read_table(csv, quiet=True))
    (tmp_path / "t" / "notes.txt").write_text("x")
    assert datasets.fingerprint(read_table(csv, quiet=True)) == fp
    _png(tmp_path / "t" / "img" / "4.png", (0, 0, 0))
    assert datasets.fingerprint(read_table(csv, quiet=True)) != fp


# ---------------------------------------------------------------------------- memory and progress

def test_eager_loading_too_large_is_refused_with_the_figure_before_allocating(tmp_path, capsys, monkeypatch):
    csv = write_table(tmp_path / "t")
    monkeypatch.setattr(data, "available_memory", lambda: 64 << 20)
    allocated = []
    monkeypatch.setattr(data.np, "empty", lambda *a, **k: allocated.append(a) or pytest.fail("allocated"))
    with pytest.raises(ValueError, match=r"24 images at 2000 px into memory needs 275 MiB of memory, more than the 64 MiB available.*--lazy-images"):
        load_images(read_table(csv, quiet=True), 2000)
    monkeypatch.undo()
    monkeypatch.setenv("MCLFIR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(data, "available_memory", lambda: 64 << 20)
    args = [a if a != "16" else "3000" for a in DEMO]
    assert main([*args, "--dataset", "table", "--data-dir", str(csv), "--increments", "colour",
                 "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "needs 618 MiB of memory" in errors[0] and "--lazy-images" in errors[0]
    assert "Traceback" not in err


def test_no_progress_reaches_the_preparer(tmp_path, capsys):
    root = write_fpi(tmp_path / "fpi", n=320)  # the demo prepares with min_count 150
    base = [*DEMO, "--dataset", "fashion-product-images", "--data-dir", str(root), "--increments",
            "subCategory;baseColour"]
    assert main([*base, "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert "checking images" not in err and "it/s" not in err
