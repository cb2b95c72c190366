"""UT-Zappos50K: ``ut-zap50k-data/meta-data.csv`` +
``ut-zap50k-images/<Category>/<SubCategory>/<Brand>/<CID>.jpg``.
"""
from __future__ import annotations

import csv
import os
from collections import Counter
from pathlib import Path

from .table import FashionTable
from .realutils import PrepareReport, check_layout, clean_value, build_table, common_options


ZAPPOS_ATTRIBUTES = ("Category", "Closure", "Gender", "HeelHeight")  # the four conditions of CSN / ASEN


def prepare_zappos50k(data_dir, out=None, *, attributes=ZAPPOS_ATTRIBUTES, min_count: int = 50, seed: int = 0,
                      test_fraction: float = 0.25, verify: bool = True, strict: bool = False, quiet: bool = False,
                      progress: bool = True) -> FashionTable:
    """UT-Zappos50K: ``ut-zap50k-data/meta-data.csv`` (CID, Category, SubCategory, HeelHeight,
    Insole, Closure, Gender, Material, ToeStyle) and the images under ``ut-zap50k-images/``
    (or ``ut-zap50k-images-square/``) as ``<Category>/<SubCategory>/<Brand>/<a>.<b>.jpg`` for
    CID ``a-b``. Multi-valued cells (``Lace up;Zipper``) are ambiguous for retrieval: not
    annotated, and counted. Seeded split (CSN's split needs its own triplet files).
    """
    root = Path(data_dir).expanduser().resolve()
    check_layout("zappos50k", root, ["ut-zap50k-data/meta-data.csv"],
                  {"the image folder": ["ut-zap50k-images", "ut-zap50k-images-square"]})
    img_root = root / "ut-zap50k-images" if (root / "ut-zap50k-images").is_dir() else root / "ut-zap50k-images-square"
    report = PrepareReport("zappos50k", str(root / "ut-zap50k-data/meta-data.csv"))
    by_cid = {}
    for dirpath, _, filenames in os.walk(img_root):
        for fn in filenames:
            stem, ext = os.path.splitext(fn)
            if ext.lower() not in (".jpg", ".jpeg", ".png"):
                continue
            cid = stem.replace(".", "-")
            if cid in by_cid:
                report.notes.append(f"image of CID {cid} found twice; kept {by_cid[cid]}")
                continue
            by_cid[cid] = os.path.join(dirpath, fn)
    csv_path = root / "ut-zap50k-data/meta-data.csv"
    records, multi = [], Counter()
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if "CID" not in header:
            raise ValueError(f"{csv_path}: no 'CID' column in the header {header}")
        missing_cols = [a for a in attributes if a not in header]
        if missing_cols:
            raise ValueError(f"{csv_path}: no column(s) {missing_cols}; columns: {header}")
        seen = set()
        for row in reader:
            line = reader.line_num
            if not row or not any(c.strip() for c in row):
                continue
            if len(row) != len(header):
                report.skipped_lines.append(f"meta-data.csv line {line}: {len(row)} fields, expected {len(header)}")
                continue
            rec = dict(zip(header, (c.strip() for c in row)))
            cid = rec["CID"]
            if not cid or cid in seen:
                report.skipped_lines.append(f"meta-data.csv line {line}: CID {cid!r} empty or repeated")
                continue
            seen.add(cid)
            values = {}
            for a in attributes:
                v = clean_value(rec[a])
                if v is not None and ";" in v:
                    multi[a] += 1
                    v = None
                values[a] = v
            path = by_cid.get(cid, str(img_root / f"{cid.replace('-', '.')}.jpg"))
            records.append({"image": path, "split": None, "values": values})
    for a, n in multi.items():
        report.notes.append(f"{n} rows have several {a} values (a;b): not annotated for {a}")
    return build_table("zappos50k", str(csv_path), records, list(attributes), out, report=report,
                  **common_options(min_count=min_count, seed=seed, test_fraction=test_fraction, verify=verify,
                            strict=strict, quiet=quiet, progress=progress))
