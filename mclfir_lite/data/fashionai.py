"""FashionAI 2018 attributes: ``Annotations/label.csv`` + ``Images/``; ASEN's split when
its ``filenames_*.txt`` lie beside it.
"""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from .table import FashionTable
from .realutils import PrepareReport, check_layout, build_table, common_options, asen_split


FASHIONAI_VALUES = {  # the challenge's label names, in the order of the y/n/m strings
    "skirt_length": ["Invisible", "Short Length", "Knee Length", "Midi Length", "Ankle Length", "Floor Length"],
    "sleeve_length": ["Invisible", "Sleeveless", "Cup Sleeves", "Short Sleeves", "Elbow Sleeves", "3/4 Sleeves",
                      "Wrist Length", "Long Sleeves", "Extra Long Sleeves"],
    "coat_length": ["Invisible", "High Waist Length", "Regular Length", "Long Length", "Micro Length",
                    "Knee Length", "Midi Length", "Ankle&Floor Length"],
    "pant_length": ["Invisible", "Short Pant", "Mid Length", "3/4 Length", "Cropped Pant", "Full Length"],
    "collar_design": ["Invisible", "Shirt Collar", "Peter Pan", "Puritan Collar", "Rib Collar"],
    "lapel_design": ["Invisible", "Notched", "Collarless", "Shawl Collar", "Plus Size Shawl"],
    "neckline_design": ["Invisible", "Strapless Neck", "Deep V Neckline", "Straight Neck", "V Neck",
                        "Square Neckline", "Off Shoulder", "Round Neckline", "Sweat Heart Neck",
                        "OneShoulder Neckline"],
    "neck_design": ["Invisible", "Turtle Neck", "Ruffle Semi-High Collar", "Low Turtle Neck", "Draped Collar"],
}


def prepare_fashionai(data_dir, out=None, *, attributes=tuple(FASHIONAI_VALUES), min_count: int = 20,
                      seed: int = 0, test_fraction: float = 0.25, verify: bool = True, strict: bool = False,
                      quiet: bool = False, progress: bool = True) -> FashionTable:
    """FashionAI attributes: ``Annotations/label.csv`` rows ``image,attribute_labels,label_string``
    (``nnynnn``: one ``y`` marks the value; ``m``, "maybe", is ignored), images relative to
    the folder holding ``Annotations``. Several such folders under ``data_dir`` (``base/``,
    ``web/``) are read together. Each image is annotated for one attribute (others -1).
    A line with no ``y``, several, or a string of the wrong length is skipped and reported.
    """
    root = Path(data_dir).expanduser().resolve()
    if not root.is_dir():
        check_layout("fashionai", root, [])
    label_files = sorted(root.glob("Annotations/label.csv")) + sorted(root.glob("*/Annotations/label.csv"))
    if not label_files:
        check_layout("fashionai", root, ["Annotations/label.csv"])
    report = PrepareReport("fashionai", ", ".join(str(p) for p in label_files))
    split_of = asen_split(root, key=lambda p: Path(p).name)
    records, seen = [], set()
    unknown = Counter()
    for lf in label_files:
        base = lf.parent.parent
        with open(lf, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            for row in reader:
                line = reader.line_num
                if not row or not any(c.strip() for c in row):
                    continue
                where = f"{lf.relative_to(root)} line {line}"
                if len(row) != 3:
                    report.skipped_lines.append(f"{where}: {len(row)} fields, expected 3 (image,attribute,labels)")
                    continue
                img, key, lab = (c.strip() for c in row)
                attr = key[:-len("_labels")] if key.endswith("_labels") else key
                if attr not in FASHIONAI_VALUES:
                    unknown[key] += 1
                    report.skipped_lines.append(f"{where}: unknown attribute {key!r}")
                    continue
                names = FASHIONAI_VALUES[attr]
                if len(lab) != len(names) or set(lab) - set("ynm"):
                    report.skipped_lines.append(f"{where}: label {lab!r} is not {len(names)} letters of y/n/m")
                    continue
                if lab.count("y") != 1:
                    report.skipped_lines.append(f"{where}: label {lab!r} has {lab.count('y')} 'y', expected one")
                    continue
                path = str(base / img)
                if (path, attr) in seen:
                    report.skipped_lines.append(f"{where}: {img} is annotated twice for {attr}")
                    continue
                seen.add((path, attr))
                split = None
                if split_of is not None:
                    split = split_of.get(Path(img).name)
                    if split is None:
                        report.skipped_lines.append(f"{where}: {img} is not in ASEN's split files")
                        continue
                records.append({"image": path, "split": split, "values": {attr: names[lab.index("y")]}})
    if split_of is not None:
        report.notes.append("split from ASEN's filenames_{train,valid,test}.txt (valid counted as train)")
    # one record per image: an image annotated for several attributes keeps them all
    merged = {}
    for r in records:
        m = merged.setdefault(r["image"], {"image": r["image"], "split": r["split"], "values": {}})
        m["values"].update(r["values"])
    attributes = list(attributes)
    return build_table("fashionai", report.source, list(merged.values()), attributes, out, report=report,
                  **common_options(min_count=min_count, seed=seed, test_fraction=test_fraction, verify=verify,
                            strict=strict, quiet=quiet, progress=progress))
