"""Real-data preparers: each dataset's published layout -> a checked table, with every
skipped line, missing and corrupt image reported; missing folders named; downloads
verified and never repeated. Fixtures are written here in the datasets' own layouts."""
import csv
import hashlib
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mclfir_lite.data import darn, fashion_product_images, fashionai, realdata, realutils, zappos50k
from mclfir_lite.data.table import read_table
from mclfir_lite.data.realutils import DatasetLayoutError, DownloadError

SHARED_FPI = Path(__file__).resolve().parents[2] / "shared" / "data" / "fashion-product-images-small"
COLOURS = {"Black": (0, 0, 0), "Blue": (0, 0, 255), "White": (250, 250, 250), "Red": (255, 0, 0)}


pytestmark = pytest.mark.usefixtures("isolated_cache", "one_thread")


def jpg(path: Path, colour=(128, 64, 32), size=(12, 16)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format="JPEG")


def corrupt(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")


def report_of(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


# ---------------------------------------------------------------------------- Fashion Product Images

def write_fpi(root: Path, n: int = 48) -> dict:
    """A Kaggle-layout fixture with every quirk of the real styles.csv; returns what it planted."""
    header = "id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName"
    lines = [header]
    for i in range(1, n + 1):
        colour = list(COLOURS)[i % 3]
        sub, art = (("Topwear", "Tshirts"), ("Shoes", "Casual Shoes"))[i % 2]
        gender, usage = ("Men", "Women")[(i // 3) % 2], ("Casual", "Sports")[(i // 2) % 2]
        name = f'"Brand {i}, {colour} {art}"' if i % 5 == 0 else f"Brand {i} {colour} {art}"
        if i == 7:
            name = ""  # an empty name is fine
        lines.append(f"{i},{gender},Apparel,{sub},{art},{colour},Summer,2012,{usage},{name}")
        jpg(root / "images" / f"{i}.jpg", COLOURS[colour])
    # quirks
    lines.append("100101,Men,Apparel,Topwear,Tshirts,Black,Fall,2012,Casual,Nike Men, Black, Tshirt")  # unquoted commas
    jpg(root / "images" / "100101.jpg")
    lines.append("100102,Men,Apparel,Topwear")                                            # too few fields
    lines.append("abc,Men,Apparel,Topwear,Tshirts,Black,Fall,2012,Casual,Bad id")     # id not a number
    lines.append("3,Men,Apparel,Topwear,Tshirts,Black,Fall,2012,Casual,Repeated id")   # repeated id
    lines.append("100103,Men,Apparel,Topwear,Tshirts,Black,Fall,2012,Casual,No image")    # no image file
    lines.append("100104,Men,Apparel,Topwear,Tshirts,Red,Fall,2012,Casual,Corrupt image")  # corrupt image
    corrupt(root / "images" / "100104.jpg")
    lines.append("100105,Men,Apparel,Headwear,Caps,Red,Fall,2012,NA,Rare values")         # long tail + NA
    jpg(root / "images" / "100105.jpg", COLOURS["Red"])
    (root / "styles.csv").write_text("\n".join(lines) + "\n")
    base = n + 2  # line number of the first quirk row (header is line 1)
    return {"repaired": base, "few": base + 1, "bad_id": base + 2, "repeat": base + 3,
            "missing": str(root / "images" / "100103.jpg"), "corrupt": str(root / "images" / "100104.jpg"),
            "rare": str(root / "images" / "100105.jpg")}


def test_fpi_reads_the_kaggle_layout_and_reports_every_quirk(tmp_path, capsys):
    root, out = tmp_path / "fpi", tmp_path / "out"
    planted = write_fpi(root)
    table = realdata.prepare_fashion_product_images(root, out, min_count=2, seed=0)
    printed = capsys.readouterr().out
    rep = report_of(out)
    # rows: 48 good + 100101 (repaired) + 100105 (rare values, still annotated for gender etc.)
    assert len(table) == 50 and rep["rows"] == 50
    assert rep["split"] == {"train": 38, "test": 12}
    assert any(f"line {planted['repaired']}:" in s and "productDisplayName" in s for s in rep["repaired_lines"])
    skipped = " | ".join(rep["skipped_lines"])
    for key in ("few", "bad_id", "repeat"):
        assert f"line {planted[key]}:" in skipped
    assert rep["missing_images"] == [planted["missing"]]
    assert len(rep["corrupt_images"]) == 1 and rep["corrupt_images"][0].startswith(planted["corrupt"])
    assert planted["corrupt"] in printed and "1 corrupt" in printed
    # long tail: Headwear (1 image) and Red (1 image after the corrupt one left out) dropped, reported
    assert "Headwear" not in table.values["subCategory"] and rep["dropped_values"]["subCategory"] == {"Headwear": 1}
    assert rep["dropped_values"]["baseColour"] == {"Red": 1}
    assert table.values["usage"] == ["Casual", "Sports"]  # "NA" means not annotated, never a value
    rare = table.images.index(planted["rare"])
    assert table.labels["subCategory"][rare] == -1 and table.labels["usage"][rare] == -1
    assert rep["counts"]["baseColour"] == {"Black": 17, "Blue": 16, "White": 16}
    # the CSV on disk reads back to the same table
    back = read_table(out / "table.csv")
    assert [Path(p).resolve() for p in back.images] == [Path(p).resolve() for p in table.images]
    for a in table.attributes:
        assert back.values[a] == table.values[a]
        assert np.array_equal(back.labels[a], table.labels[a])
    assert list(back.split) == list(table.split)


def test_fpi_split_is_seeded_and_strict_mode_stops_on_corrupt_images(tmp_path):
    root = tmp_path / "fpi"
    planted = write_fpi(root)
    a = realdata.prepare_fashion_product_images(root, None, min_count=2, seed=1, quiet=True)
    b = realdata.prepare_fashion_product_images(root, None, min_count=2, seed=1, quiet=True)
    c = realdata.prepare_fashion_product_images(root, None, min_count=2, seed=2, quiet=True)
    assert list(a.split) == list(b.split) and list(a.split) != list(c.split)
    with pytest.raises(ValueError, match="corrupt.*100104.jpg"):
        realdata.prepare_fashion_product_images(root, None, min_count=2, strict=True, quiet=True)
    # without verification the corrupt file is not opened (and not reported)
    t = realdata.prepare_fashion_product_images(root, None, min_count=2, verify=False, quiet=True)
    assert planted["corrupt"] in t.images


def test_fpi_unknown_attribute_and_bad_min_count_are_named(tmp_path):
    root = tmp_path / "fpi"
    write_fpi(root, n=12)
    with pytest.raises(ValueError, match="sleeve"):
        realdata.prepare_fashion_product_images(root, None, attributes=["sleeve"], quiet=True)
    with pytest.raises(ValueError, match="min_count"):
        realdata.prepare_fashion_product_images(root, None, min_count=0, quiet=True)


@pytest.mark.parametrize("dataset, needed", [
    ("fashion-product-images", ["styles.csv", "images"]),
    ("fashionai", ["Annotations/label.csv"]),
    ("darn", ["filenames_train.txt", "label_train.txt", "query_test.txt"]),
    ("deepfashion", ["Anno/list_attr_img.txt", "Eval/list_eval_partition.txt", "img"]),
    ("zappos50k", ["ut-zap50k-data/meta-data.csv", "ut-zap50k-images"]),
])
def test_an_incomplete_folder_names_what_is_missing_and_where_to_get_it(tmp_path, dataset, needed):
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(DatasetLayoutError) as err:
        realdata.PREPARERS[dataset](root, tmp_path / "out", quiet=True)
    msg = str(err.value)
    assert str(root) in msg and "How to get it" in msg and "http" in msg
    for n in needed:
        assert n in msg
    with pytest.raises(DatasetLayoutError, match="not found"):
        realdata.PREPARERS[dataset](tmp_path / "nowhere", None, quiet=True)


def test_fpi_partial_folder_names_only_the_missing_part(tmp_path):
    root = tmp_path / "fpi"
    (root / "images").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError) as err:
        realdata.prepare_fashion_product_images(root, None, quiet=True)
    assert "missing: styles.csv" in str(err.value)


# ---------------------------------------------------------------------------- FashionAI

def write_fashionai(root: Path, asen_split: bool = False) -> None:
    rows = []
    for i in range(16):
        attr, n = (("skirt_length", 6), ("collar_design", 5))[i % 2]
        img = f"Images/{attr}_labels/{i:04x}.jpg"
        lab = ["n"] * n
        lab[1 + (i // 2) % 2] = "y"
        if i == 3:
            lab[0] = "m"  # "maybe" is ignored
        rows.append(f"{img},{attr}_labels,{''.join(lab)}")
        jpg(root / img, (10 * i, 0, 0))
    rows.append("Images/skirt_length_labels/bad1.jpg,skirt_length_labels,nynynn")  # line 17: two y
    rows.append("Images/skirt_length_labels/bad2.jpg,skirt_length_labels,nyn")     # line 18: wrong length
    rows.append("Images/hat_labels/bad3.jpg,hat_labels,ny")                        # line 19: unknown attribute
    rows.append("Images/skirt_length_labels/gone.jpg,skirt_length_labels,nnynnn")  # line 20: no image
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "Annotations" / "label.csv").write_text("\n".join(rows) + "\n")
    if asen_split:
        names = [f"{i:04x}.jpg" for i in range(16)]
        (root / "filenames_train.txt").write_text("\n".join(f"x/{n}" for n in names[:10]) + "\n")
        (root / "filenames_test.txt").write_text("\n".join(f"x/{n}" for n in names[10:14]) + "\n")


def test_fashionai_label_strings(tmp_path):
    root, out = tmp_path / "fashionAI", tmp_path / "out"
    write_fashionai(root)
    table = realdata.prepare_fashionai(root, out, min_count=1, seed=0, quiet=True)
    rep = report_of(out)
    assert len(table) == 16 and set(table.attributes) == {"skirt_length", "collar_design"}
    assert rep["removed_attributes"].keys() == set(fashionai.FASHIONAI_VALUES) - {"skirt_length", "collar_design"}
    skipped = " | ".join(rep["skipped_lines"])
    assert "line 17" in skipped and "2 'y'" in skipped
    assert "line 18" in skipped and "line 19" in skipped and "hat_labels" in skipped
    assert rep["missing_images"] == [str(root / "Images/skirt_length_labels/gone.jpg")]
    assert table.values["skirt_length"] == ["Knee Length", "Short Length"]   # y at index 1 or 2
    assert table.values["collar_design"] == ["Peter Pan", "Shirt Collar"]
    # every image is annotated for exactly one attribute
    annotated = (table.labels["skirt_length"] >= 0).astype(int) + (table.labels["collar_design"] >= 0)
    assert (annotated == 1).all()


def test_fashionai_uses_asen_split_files_when_present(tmp_path):
    root = tmp_path / "fashionAI"
    write_fashionai(root, asen_split=True)
    table = realdata.prepare_fashionai(root, None, min_count=1, quiet=True)
    names = [Path(p).name for p in table.images]
    split = dict(zip(names, table.split))
    assert len(table) == 14  # two images are in neither split file: reported, left out
    assert all(split[f"{i:04x}.jpg"] == "train" for i in range(10))
    assert all(split[f"{i:04x}.jpg"] == "test" for i in range(10, 14))


# ---------------------------------------------------------------------------- DARN (ASEN layout)

def write_darn(root: Path, with_meta: bool) -> None:
    train = [f"pic/tr{i}.jpg" for i in range(12)]
    test = [f"pic/te{i}.jpg" for i in range(8)]
    for p in train + test:
        jpg(root / p)
    (root / "filenames_train.txt").write_text("\n".join(train) + "\n")
    (root / "filenames_test.txt").write_text("\n".join(test) + "\n")
    # file attribute value [attribute value]: attribute 0 = clothes category, 2 = clothes color
    lines = [f"{i} 0 {i % 2} 2 {i % 3}" for i in range(12)] + ["12 0 1", "3 11 0"]  # bad file, bad attribute
    (root / "label_train.txt").write_text("\n".join(lines) + "\n")
    (root / "query_test.txt").write_text("\n".join(f"{i} 0 {i % 2}" for i in range(4)) + "\n")
    (root / "candidate_test.txt").write_text("\n".join(f"{i} 2 {i % 3}" for i in range(8)) + "\nx y z\n")
    if with_meta:
        meta = {"DARN": {"ATTRIBUTES": list(darn.DARN_ATTRIBUTES),
                         "ATTRIBUTES_NUM": list(darn.DARN_ATTRIBUTES.values()),
                         "ATTRIBUTES_VALUES": {"clothes category": [f"cat{k}" for k in range(20)]}}}
        (root.parent / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("with_meta", [False, True])
def test_darn_asen_layout(tmp_path, with_meta):
    root, out = tmp_path / "data" / "DARN", tmp_path / "out"
    write_darn(root, with_meta)
    table = realdata.prepare_darn(root, out, min_count=1, quiet=True)
    rep = report_of(out)
    assert set(table.attributes) == {"clothes_category", "clothes_color"}
    assert rep["split"] == {"train": 12, "test": 8}
    skipped = " | ".join(rep["skipped_lines"])
    assert "label_train.txt line 13" in skipped and "file index 12" in skipped
    assert "label_train.txt line 14" in skipped and "out of range" in skipped
    assert "candidate_test.txt line 9" in skipped
    cat = table.values["clothes_category"]
    assert cat == (["cat0", "cat1"] if with_meta else ["clothes_category_0", "clothes_category_1"])
    i = table.images.index(str(root / "pic/tr5.jpg"))
    assert cat[table.labels["clothes_category"][i]].endswith("1")
    assert table.values["clothes_color"][table.labels["clothes_color"][i]].endswith("2")


# ---------------------------------------------------------------------------- DeepFashion

def write_deepfashion(root: Path) -> None:
    cloth = [("floral", 1), ("stripe", 1), ("denim", 2), ("knit", 2), ("a-line", 3), ("peter pan collar", 4),
             ("v-neck", 4), ("boho", 5)]
    (root / "Anno").mkdir(parents=True)
    (root / "Eval").mkdir()
    (root / "Anno" / "list_attr_cloth.txt").write_text(
        f"{len(cloth)}\nattribute_name  attribute_type\n" + "".join(f"{n:<28}{t}\n" for n, t in cloth))
    imgs, parts, attr_lines = [], [], []
    for i in range(20):
        img = f"img/Floral_Dress_{i % 3}/img_{i:08d}.jpg"
        jpg(root / img)
        lab = [-1] * len(cloth)
        lab[i % 2] = 1                          # texture: floral / stripe
        lab[2 + (i // 2) % 2] = 1               # fabric: denim / knit
        lab[5 + i % 2] = 1                      # part: peter pan collar / v-neck
        if i == 0:
            lab[6] = 1                          # two parts: ambiguous
        attr_lines.append(f"{img:<48}" + " ".join(f"{v:>2}" for v in lab))
        parts.append(f"{img:<48}" + ("test" if i % 4 == 0 else "val" if i == 1 else "train"))
    attr_lines.append("img/bad/img_1.jpg  1 -1")  # wrong number of labels
    (root / "Anno" / "list_attr_img.txt").write_text(f"21\nimage_name  attribute_labels\n" + "\n".join(attr_lines) + "\n")
    (root / "Eval" / "list_eval_partition.txt").write_text(
        f"20\nimage_name  evaluation_status\n" + "\n".join(parts) + "\n")


def test_deepfashion_types_become_attributes(tmp_path):
    root, out = tmp_path / "DeepFashion", tmp_path / "out"
    write_deepfashion(root)
    table = realdata.prepare_deepfashion(root, out, min_count=1, quiet=True)
    rep = report_of(out)
    assert set(table.attributes) == {"texture", "fabric", "part"}  # shape and style have < 2 values
    assert set(rep["removed_attributes"]) == {"shape", "style"}
    assert table.values["part"] == ["peter pan collar", "v-neck"]  # names with spaces survive
    i0 = table.images.index(str(root / "img/Floral_Dress_0/img_00000000.jpg"))
    assert table.labels["part"][i0] == -1 and any("several positive part" in n for n in rep["notes"])
    assert rep["split"] == {"train": 15, "test": 5}  # val counted as train
    assert any("line 23" in s and "2 labels" in s for s in rep["skipped_lines"])


# ---------------------------------------------------------------------------- UT-Zappos50K

def write_zappos(root: Path) -> None:
    rows = ["CID,Category,SubCategory,HeelHeight,Insole,Closure,Gender,Material,ToeStyle"]
    for i in range(24):
        cat, sub = (("Shoes", "Oxfords"), ("Boots", "Ankle"))[i % 2]
        closure = ("Lace up", "Zipper", "Lace up;Zipper")[i % 3]
        cid = f"{7000000 + i}-{100 + i}"
        rows.append(f"{cid},{cat},{sub},{('Flat', '1in - 1 3/4in')[i % 2]},Padded,{closure},"
                    f"{('Men', 'Women')[(i // 2) % 2]},Leather,Round")
        jpg(root / "ut-zap50k-images" / cat / sub / "Brand." / f"{7000000 + i}.{100 + i}.jpg")
    rows.append("7999999-1,Shoes,Oxfords,Flat,Padded,Lace up,Men,Leather,Round")  # no image
    rows.append("7999998-2,Shoes,Oxfords")                                          # malformed
    (root / "ut-zap50k-data").mkdir(parents=True)
    (root / "ut-zap50k-data" / "meta-data.csv").write_text("\n".join(rows) + "\n")


def test_zappos50k_layout(tmp_path):
    root, out = tmp_path / "zap", tmp_path / "out"
    write_zappos(root)
    table = realdata.prepare_zappos50k(root, out, min_count=1, quiet=True)
    rep = report_of(out)
    assert len(table) == 24 and table.attributes == list(zappos50k.ZAPPOS_ATTRIBUTES)
    assert table.values["Closure"] == ["Lace up", "Zipper"]
    assert (table.labels["Closure"] == -1).sum() == 8 and any("several Closure" in n for n in rep["notes"])
    assert len(rep["missing_images"]) == 1 and rep["missing_images"][0].endswith("7999999.1.jpg")
    assert any("line 27" in s for s in rep["skipped_lines"])
    i = table.images.index(str(root / "ut-zap50k-images/Boots/Ankle/Brand./7000001.101.jpg"))
    assert table.values["Category"][table.labels["Category"][i]] == "Boots"


# ---------------------------------------------------------------------------- cache, CLI, downloads

def test_load_prepared_prepares_once_then_reads(tmp_path, monkeypatch):
    root = tmp_path / "fpi"
    write_fpi(root)
    t1 = realdata.load_prepared("fashion-product-images", root, quiet=True, min_count=2)
    monkeypatch.setitem(realdata.PREPARERS, "fashion-product-images",
                        lambda *a, **k: pytest.fail("prepared twice"))
    t2 = realdata.load_prepared("fashion-product-images", root, quiet=True, min_count=2)
    assert t1.images == t2.images and t1.name == t2.name
    assert str(tmp_path / "cache" / "prepared") in t1.name
    with pytest.raises(ValueError, match="--data-dir"):
        realdata.load_prepared("fashionai", None)


def test_demo_runs_on_a_real_dataset_name_with_its_default_plan(tmp_path, capsys):
    from mclfir_lite.cli.main import main
    root = tmp_path / "fpi"
    write_fpi(root, n=456)  # 152 images per colour: above the default min_count of 150
    out = tmp_path / "run"
    code = main(["demo", "--quick", "--dataset", "fashion-product-images", "--data-dir", str(root), "--out", str(out),
                 "--strategies", "finetune", "--steps", "2", "--image-size", "16", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    res = json.loads((out / "results.json").read_text())
    assert res["increments"] == [["subCategory"], ["baseColour"], ["usage", "gender"]]  # the fpi3 plan
    assert set(res["strategies"]["finetune"]["final_map"]) == {"subCategory", "baseColour", "usage", "gender"}
    capsys.readouterr()
    assert main(["demo", "--dataset", "darn", "--data-dir", str(tmp_path / "nope"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "data folder not found" in err and "asen" in err
    assert main(["demo", "--dataset", "fashionai", "--out", str(tmp_path / "r")]) == 2
    assert "--data-dir" in capsys.readouterr().err


def test_shared_fashion_product_images_subset(tmp_path, capsys):
    if not (SHARED_FPI / "styles.csv").is_file():
        pytest.skip(f"shared real-image subset not found at {SHARED_FPI} (it sits beside the checkout in CI)")
    out = tmp_path / "out"
    table = realdata.prepare_fashion_product_images(SHARED_FPI, out, seed=0, verify=True, progress=False)
    rep = report_of(out)
    assert len(table) == 9583 and not rep["missing_images"] and not rep["corrupt_images"]
    assert rep["split"] == {"train": 7187, "test": 2396}
    # the counts the dataset's README gives
    assert rep["counts"]["subCategory"]["Topwear"] == 4423 and rep["counts"]["subCategory"]["Shoes"] == 1648
    assert rep["counts"]["baseColour"]["Black"] == 2124 and rep["counts"]["gender"]["Men"] == 5964
    assert rep["counts"]["usage"] == {"Casual": 7477, "Ethnic": 456, "Formal": 857, "Sports": 773}
    assert min(min(v.values()) for v in rep["counts"].values()) >= 150
    assert "Topwear 4423" in capsys.readouterr().out
    assert table.attributes == list(fashion_product_images.FPI_ATTRIBUTES)


def _zip_with_styles(tmp_path: Path) -> tuple[Path, str]:
    src = tmp_path / "src"
    write_fpi(src, n=6)
    archive = tmp_path / "fashion-product-images-small.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in src.rglob("*"):
            if p.is_file():
                z.write(p, Path("myntradataset") / p.relative_to(src))
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest()


def test_download_is_verified_and_never_repeated(tmp_path, monkeypatch):
    archive, sha = _zip_with_styles(tmp_path)
    dest = tmp_path / "dl"
    folder = realdata.fetch_fashion_product_images(archive.as_uri(), sha, dest=dest)
    assert (folder / "styles.csv").is_file() and folder.name == "myntradataset"
    # second time: no network call at all, and no re-extraction
    monkeypatch.setattr(realutils.urllib.request, "urlopen", lambda *a, **k: pytest.fail("downloaded twice"))
    monkeypatch.setattr(fashion_product_images, "safe_extract", lambda *a, **k: pytest.fail("extracted twice"))
    assert realdata.fetch_fashion_product_images(archive.as_uri(), sha, dest=dest) == folder
    # a file already there with another checksum is an error, not an overwrite
    with pytest.raises(ValueError, match="delete it"):
        realutils.download(archive.as_uri(), dest / archive.name, sha256="0" * 64)


def test_download_checksum_mismatch_and_no_network(tmp_path):
    archive, sha = _zip_with_styles(tmp_path)
    with pytest.raises(ValueError, match="checksum mismatch"):
        realutils.download(archive.as_uri(), tmp_path / "x.zip", sha256="0" * 64)
    assert not (tmp_path / "x.zip").exists() and not (tmp_path / "x.zip.part").exists()
    t0 = time.perf_counter()
    with pytest.raises(DownloadError, match="local path"):
        realutils.download("http://mclfir-no-such-host.invalid/data.zip", tmp_path / "y.zip", timeout=5)
    assert time.perf_counter() - t0 < 20
    with pytest.raises(DownloadError, match="kaggle"):
        realdata.fetch_fashion_product_images(url=None, dest=tmp_path)


def test_prepare_script_entry_point(tmp_path, capsys):
    root = tmp_path / "fpi"
    write_fpi(root)
    assert realdata.main("fashion-product-images", ["--data-dir", str(root), "--out", str(tmp_path / "o"),
                                                    "--min-count", "2"]) == 0
    assert (tmp_path / "o" / "table.csv").is_file()
    assert realdata.main("zappos50k", ["--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "o2")]) == 2
    assert "utzap50k" in capsys.readouterr().err


def test_make_synthfashion_writes_pngs_and_a_table(tmp_path):
    import runpy
    script = Path(__file__).resolve().parents[1] / "data_scripts" / "make_synthfashion.py"
    main = runpy.run_path(str(script))["main"]
    out = tmp_path / "synth"
    assert main(["--out", str(out), "--n", "12", "--size", "16", "--seed", "3"]) == 0
    table = read_table(out / "table.csv")
    from mclfir_lite.data import synth
    images, labels = synth.render(12, size=16, seed=3)
    assert len(table) == 12 and list(table.split).count("test") == 4
    for a, names in synth.ATTRIBUTES.items():  # same values, whatever the order of the codes
        assert [table.values[a][k] for k in table.labels[a]] == [names[k] for k in labels[a]]
    assert np.array_equal(np.asarray(Image.open(table.images[5])), images[5])  # PNG: lossless
    assert main(["--out", str(out), "--n", "12"]) == 2  # never overwrites silently


# ---------------------------------------------------------------------------- reliability (issue 12)

def test_a_stray_comma_outside_the_name_never_shifts_columns(tmp_path):
    root, out = tmp_path / "fpi", tmp_path / "out"
    planted = write_fpi(root)
    lines = (root / "styles.csv").read_text().splitlines()
    lines.append("100106,Men,Apparel,Topwear,Tops, Tunics,Blue,Summer,2011,Casual,Some Tunic")  # comma in articleType
    lines.append("100107,Women,Apparel,Topwear,Tshirts,Blue,Summer,2012,Casual,Brand, Blue, Tee")  # comma in the name
    (root / "styles.csv").write_text("\n".join(lines) + "\n")
    for i in (100106, 100107):
        jpg(root / "images" / f"{i}.jpg", COLOURS["Blue"])
    table = realdata.prepare_fashion_product_images(root, out, min_count=1, seed=0, quiet=True)
    rep = report_of(out)
    n = len(lines)
    assert any(f"line {n - 1}:" in s and "cannot be placed in productDisplayName alone (articleType 'Tops'" in s
               for s in rep["skipped_lines"])
    assert any(f"line {n}:" in s for s in rep["repaired_lines"])
    assert str(root / "images" / "100106.jpg") not in table.images
    assert str(root / "images" / "100107.jpg") in table.images
    for attr, bad in (("baseColour", "Tops"), ("baseColour", "Tunics"), ("usage", "2011"), ("season", "Blue")):
        assert bad not in table.values.get(attr, []), (attr, bad)
    assert any(f"line {planted['repaired']}:" in s for s in rep["repaired_lines"])  # Kaggle's case still kept


def test_non_utf8_bytes_are_reported_by_line(tmp_path):
    root, out = tmp_path / "fpi", tmp_path / "out"
    write_fpi(root)
    raw = (root / "styles.csv").read_bytes().split(b"\n")
    raw[4] = raw[4].replace(b"Brand", b"Br\xe9nd")  # latin-1 in line 5 (id 4)
    (root / "styles.csv").write_bytes(b"\n".join(raw))
    table = realdata.prepare_fashion_product_images(root, out, min_count=2, seed=0, quiet=True)
    rep = report_of(out)
    assert any(s.startswith("styles.csv line 5: not UTF-8") and "0xe9" in s for s in rep["skipped_lines"])
    assert str(root / "images" / "4.jpg") not in table.images and len(table) == 49


def test_prepared_cache_watches_the_images_and_can_be_rebuilt(tmp_path, monkeypatch):
    root = tmp_path / "fpi"
    planted = write_fpi(root)
    names = lambda t: {Path(p).name for p in t.images}
    t1 = realdata.load_prepared("fashion-product-images", root, quiet=True, min_count=2)
    assert "100104.jpg" not in names(t1)
    jpg(Path(planted["corrupt"]), COLOURS["Red"])  # the user repairs the image
    t2 = realdata.load_prepared("fashion-product-images", root, quiet=True, min_count=2)
    assert "100104.jpg" in names(t2)  # prepared again, not the stale table
    calls = []
    real = realdata.PREPARERS["fashion-product-images"]
    monkeypatch.setitem(realdata.PREPARERS, "fashion-product-images", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    realdata.load_prepared("fashion-product-images", root, quiet=True, min_count=2)
    assert calls == []
    realdata.load_prepared("fashion-product-images", root, quiet=True, min_count=2, rebuild=True)
    assert calls == [1]


def test_strict_stops_on_any_problem_and_the_report_lists_everything(tmp_path):
    root, out = tmp_path / "fpi", tmp_path / "out"
    planted = write_fpi(root)
    jpg(root / "images" / "999999.jpg")  # an image no row names
    with pytest.raises(ValueError, match="strict mode stops on 5 problem") as err:  # 3 lines, 1 missing, 1 corrupt
        realdata.prepare_fashion_product_images(root, out, min_count=2, seed=0, strict=True, quiet=True)
    assert str(out / "report.json") in str(err.value)
    rep = report_of(out)
    assert len(rep["skipped_lines"]) == 3 and rep["missing_images"] == [planted["missing"]]
    assert rep["unused_images"] == [str(root / "images" / "999999.jpg")]
    # without strict, the report names every row left out, also those with no attribute left
    realdata.prepare_fashion_product_images(root, out, attributes=("subCategory", "baseColour"), min_count=2, seed=0,
                                            quiet=True)  # row 100105: Headwear and Red, both too rare
    rep = report_of(out)
    assert rep["unannotated_rows"] == len(rep["unannotated_images"]) > 0


def test_demo_strict_and_a_removed_attribute_are_named(tmp_path, capsys):
    from mclfir_lite.cli.main import main
    root = tmp_path / "fpi"
    write_fpi(root, n=456)
    base = ["demo", "--quick", "--dataset", "fashion-product-images", "--data-dir", str(root), "--no-progress",
            "--steps", "2", "--image-size", "16", "--strategies", "finetune"]
    assert main([*base, "--out", str(tmp_path / "a"), "--strict"]) == 2
    assert "strict mode stops on" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "b"), "--increments", "gender;season"]) == 2
    err = capsys.readouterr().err
    assert "removed when the dataset was prepared" in err and "'season'" in err and "unknown attribute" not in err


def test_a_strict_stop_leaves_the_cached_lenient_table_and_its_report_alone(tmp_path, capsys):
    root = tmp_path / "fpi"
    write_fpi(root)
    realdata.load_prepared("fashion-product-images", root, quiet=True, min_count=3)
    with pytest.raises(ValueError, match="strict mode stops"):
        realdata.load_prepared("fashion-product-images", root, quiet=True, min_count=3, strict=True)
    table = realdata.load_prepared("fashion-product-images", root, quiet=True, min_count=3)
    assert "season" in table.removed_attributes  # Summer only, once Fall's rows are too few
