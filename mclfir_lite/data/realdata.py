"""Real datasets: turn each dataset's own on-disk layout into the project's table.

Every preparer reads a dataset in the layout its authors publish, checks what it reads,
and writes ``<out>/table.csv`` (:func:`mclfir_lite.data.table.write_table`: image paths
relative to the CSV, one column per attribute, an empty cell for "not annotated"),
plus ``<out>/report.json`` and ``<out>/report.txt``. It returns the table
(:class:`~mclfir_lite.data.table.FashionTable`) and prints a short report: rows per split,
images per attribute value, and everything it left out, with the reason.

========================  ==================================================================
``fashion-product-images``  Kaggle "Fashion Product Images (Small)": ``styles.csv`` +
                            ``images/<id>.jpg``. Seeded train/test split.
``fashionai``               FashionAI 2018 attributes: ``Annotations/label.csv`` + ``Images/``.
                            ASEN's split when its ``filenames_*.txt`` lie beside it.
``darn``                    DARN in ASEN's released layout: ``filenames_*.txt``,
                            ``label_train.txt``, ``query_*.txt``, ``candidate_*.txt``.
``deepfashion``             DeepFashion attribute benchmark: ``Anno/list_attr_img.txt``,
                            ``Anno/list_attr_cloth.txt``, ``Eval/list_eval_partition.txt``.
``zappos50k``               UT-Zappos50K: ``ut-zap50k-data/meta-data.csv`` +
                            ``ut-zap50k-images/<Category>/<SubCategory>/<Brand>/<CID>.jpg``.
========================  ==================================================================

Rules shared by all preparers (nothing is dropped silently; the report lists it all):

* a missing or incomplete folder raises :class:`DatasetLayoutError`, which names the
  missing file or folder and says where to get the dataset;
* an annotation line that cannot be read is skipped and reported by file and line number;
* a row whose image file is missing is left out and counted (the first paths listed);
* ``verify=True`` (the default) decodes every image; a corrupt one is left out and
  listed by path;
* ``strict=True`` stops (ValueError) on any reported problem: a skipped line, a missing or
  corrupt image; the report files are written first, with the full list;
* long-tail values: a value with fewer than ``min_count`` images is dropped *for that
  attribute* (its rows get label -1, "not annotated"), and reported; an attribute left
  with fewer than two values (AP 1 whatever the ranking), or without test rows for a
  query/candidate split, is removed and reported (candidates that all share one value are
  refused by :func:`mclfir_lite.data.table.make_protocol`);
* the values ``""``, ``NA``, ``N/A``, ``nan``, ``None`` mean "not annotated";
* where the dataset gives no split, a seeded random ``test_fraction`` of the rows
  (sorted by image path first, so the split does not depend on listing order) is the
  test split. The query/candidate split of the test rows is
  :func:`mclfir_lite.data.table.make_protocol`'s, as for every table.

:func:`load_prepared` is what ``python -m mclfir_lite demo --dataset NAME --data-dir PATH``
calls: it prepares a dataset once into ``<cache>/prepared/<name>-<hash>/`` and reads the
table from there afterwards (``hash``: the annotation files, options and code; the images
the annotations name are watched by size, mtime and inode; other files in the folder do
not count). :func:`download` fetches a file once, with a checksum and a
time-out, and says what to do instead when there is no network; :func:`safe_extract` unpacks
a zip archive, refusing members that would land outside the target folder.
"""
from __future__ import annotations

import argparse
import csv
import glob
import hashlib
import io
import json
import os
import re
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..training.checkpoint import atomic_write_file
from .table import FashionTable, images_stamp, read_table, write_table
from ..settings import cache_dir

PREPARER_VERSION = 1  # bump when a preparer's output changes, so cached tables are rebuilt
MISSING_VALUES = frozenset({"", "NA", "N/A", "nan", "NaN", "None", "null"})

HOW_TO_GET = {
    "fashion-product-images": (
        "Fashion Product Images (Small) is on Kaggle (a free account is needed to download):\n"
        "  https://www.kaggle.com/datasets/paramaggarwal/fashion-product-images-small\n"
        "Download and unzip it, then pass the folder holding styles.csv and images/ as --data-dir.\n"
        "With the Kaggle CLI: kaggle datasets download -d paramaggarwal/fashion-product-images-small --unzip\n"
        "If you host the zip yourself: --download-url URL --sha256 HEX (or MCLFIR_FPI_URL / MCLFIR_FPI_SHA256)."),
    "fashionai": (
        "FashionAI (FashionAI Global Challenge 2018, attributes track) needs a sign-up on Alibaba Tianchi:\n"
        "  https://tianchi.aliyun.com/competition/entrance/231671/introduction\n"
        "Download fashionAI_attributes_train1.zip (and train2.zip), unzip, and pass the folder holding\n"
        "Annotations/label.csv and Images/ (or a folder holding several such folders, e.g. base/ and web/).\n"
        "ASEN's split (filenames_train/valid/test.txt, https://github.com/Maryeon/asenpp data.zip) is used\n"
        "when those files lie in the same folder."),
    "darn": (
        "DARN is distributed as image URLs with ASEN's split files (https://github.com/Maryeon/asen and\n"
        "https://github.com/Maryeon/asenpp: data.zip holds DARN/filenames_*.txt, label_train.txt,\n"
        "query_*.txt, candidate_*.txt and meta.json; darn_url.txt lists the image URLs).\n"
        "Download the images into DARN/pic/ as ASEN's README says and pass the DARN folder as --data-dir."),
    "deepfashion": (
        "DeepFashion, Category and Attribute Prediction Benchmark (CUHK MMLab; agree to the terms first):\n"
        "  http://mmlab.ie.cuhk.edu.hk/projects/DeepFashion/AttributePrediction.html\n"
        "You need Anno/list_attr_img.txt, Anno/list_attr_cloth.txt, Eval/list_eval_partition.txt and\n"
        "img/ (from img.zip), all in the folder you pass as --data-dir."),
    "zappos50k": (
        "UT-Zappos50K (UT Austin): https://vision.cs.utexas.edu/projects/finegrained/utzap50k/\n"
        "Download ut-zap50k-images.zip (or ut-zap50k-images-square.zip) and ut-zap50k-data.zip and unzip\n"
        "both into the folder you pass as --data-dir (it then holds ut-zap50k-data/meta-data.csv and\n"
        "ut-zap50k-images/)."),
}


class DatasetLayoutError(FileNotFoundError):
    """A dataset folder lacks a file or folder its layout needs (the message says which,
    and where to get the dataset)."""


class DownloadError(RuntimeError):
    """A download failed (no network, time-out, HTTP error); the message says what to do instead."""


class ChecksumError(ValueError):
    """A downloaded file is not the one expected (its sha256 differs); it was removed."""


@dataclass
class PrepareReport:
    """What a preparer read, kept and left out. ``text()`` is the printed summary."""

    dataset: str
    source: str
    rows: int = 0
    split: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)            # attribute -> {value: images}
    dropped_values: dict = field(default_factory=dict)    # attribute -> {value: images}, < min_count
    removed_attributes: dict = field(default_factory=dict)  # attribute -> reason
    skipped_lines: list = field(default_factory=list)     # "file line N: why"
    repaired_lines: list = field(default_factory=list)    # "file line N: what was repaired"
    missing_images: list = field(default_factory=list)    # image paths not found
    corrupt_images: list = field(default_factory=list)    # "path (error)"
    unannotated_rows: int = 0                              # rows left with no attribute at all
    unannotated_images: list = field(default_factory=list)  # ... their image paths
    unused_images: list = field(default_factory=list)      # image files no annotation row names
    notes: list = field(default_factory=list)
    min_count: int = 0
    verified: bool = False
    images_stamp: str = ""  # data.images_stamp of every image the annotations name (load_prepared watches it)

    def to_dict(self) -> dict:
        return asdict(self)

    def text(self, max_values: int = 8, max_list: int = 5) -> str:
        lines = [f"{self.dataset}: {self.rows} rows ({', '.join(f'{n} {s}' for s, n in self.split.items())}) "
                 f"from {self.source}"]
        lines.append(f"  images {'decoded and checked' if self.verified else 'checked for existence only'}; "
                     f"{len(self.missing_images)} missing, {len(self.corrupt_images)} corrupt")
        for title, items in (("missing image", self.missing_images), ("corrupt image", self.corrupt_images),
                             ("skipped line", self.skipped_lines), ("unused image", self.unused_images),
                             ("repaired line", self.repaired_lines)):
            if items:
                lines.append(f"  {len(items)} {title}(s){'' if title.startswith('re') else ', left out'}:")
                lines += [f"    {x}" for x in items[:max_list]]
                if len(items) > max_list:
                    lines.append(f"    ... and {len(items) - max_list} more (all in report.json)")
        if self.unannotated_rows:
            lines.append(f"  {self.unannotated_rows} rows had no annotated attribute left and were left out")
        for attr, vals in self.counts.items():
            top = sorted(vals.items(), key=lambda kv: (-kv[1], kv[0]))
            shown = ", ".join(f"{v} {n}" for v, n in top[:max_values])
            more = f", ... ({len(top)} values)" if len(top) > max_values else ""
            lines.append(f"  {attr}: {shown}{more}")
            dropped = self.dropped_values.get(attr, {})
            if dropped:
                lines.append(f"    dropped {len(dropped)} value(s) with < {self.min_count} images "
                             f"({sum(dropped.values())} labels set to 'not annotated'): "
                             + ", ".join(f"{v} {n}" for v, n in sorted(dropped.items(), key=lambda kv: -kv[1])[:max_values])
                             + (", ..." if len(dropped) > max_values else ""))
        for attr, why in self.removed_attributes.items():
            lines.append(f"  attribute {attr!r} removed: {why}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# ---------------------------------------------------------------------------- shared helpers

def _check_layout(dataset: str, root: Path, required: list[str], alternatives: dict[str, list[str]] | None = None) -> None:
    """Raise DatasetLayoutError naming every missing path of ``required`` (relative to ``root``).
    ``alternatives`` maps a description to paths of which at least one must exist."""
    if not root.is_dir():
        raise DatasetLayoutError(f"{dataset}: data folder not found: {root}\n\nHow to get it:\n{HOW_TO_GET[dataset]}")
    missing = [r for r in required if not (root / r).exists()]
    for what, paths in (alternatives or {}).items():
        if not any((root / p).exists() for p in paths):
            missing.append(f"{what} (one of: {', '.join(paths)})")
    if missing:
        raise DatasetLayoutError(
            f"{dataset}: {root} is not a complete {dataset} folder; missing: {'; '.join(missing)}\n\n"
            f"How to get it:\n{HOW_TO_GET[dataset]}")


def _clean(value) -> str | None:
    value = "" if value is None else str(value).strip()
    return None if value in MISSING_VALUES else value


def _read_lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8", errors="strict") as f:
        return [line.rstrip("\r\n") for line in f]


def check_image(path: str | Path) -> str | None:
    """Decode one image fully; return None when it is fine, else the error message."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            im.load()
            if im.size[0] < 1 or im.size[1] < 1:
                return "empty image"
    except Exception as err:  # PIL raises many kinds (OSError, SyntaxError, ValueError, ...)
        return f"{type(err).__name__}: {err}"
    return None


def _build(dataset: str, source: str, records: list[dict], attributes: list[str], out: str | Path | None, *,
           min_count: int, seed: int, test_fraction: float, verify: bool, strict: bool, quiet: bool,
           report: PrepareReport, progress: bool = True) -> FashionTable:
    """Records ``{"image": path, "split": "train" | "test" | None, "values": {attr: str | None}}``
    -> checked table, written to ``out``; see the module docstring for the rules."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    report.min_count, report.verified = min_count, verify
    records = sorted(records, key=lambda r: r["image"])
    watched = [r["image"] for r in records]  # what load_prepared watches: every image the annotations name
    report.images_stamp = images_stamp(watched)
    kept = []
    for r in records:
        if os.path.isfile(r["image"]):
            kept.append(r)
        else:
            report.missing_images.append(r["image"])
    if verify:
        from tqdm.auto import tqdm
        good = []
        for r in tqdm(kept, desc=f"{dataset}: checking images", disable=not progress or quiet, leave=False):
            err = check_image(r["image"])
            if err is None:
                good.append(r)
            else:
                report.corrupt_images.append(f"{r['image']} ({err})")
        kept = good
    if strict:
        _stop_if_problems(dataset, report, out)
    if not kept:
        raise ValueError(f"{dataset}: no usable rows in {source} ({len(report.missing_images)} images missing, "
                         f"{len(report.corrupt_images)} corrupt, {len(report.skipped_lines)} lines skipped)")
    # split: the dataset's own where given, else seeded
    free = [i for i, r in enumerate(kept) if r["split"] is None]
    if free:
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(free))
        n_test = int(round(len(free) * test_fraction))
        for k, j in enumerate(order):
            kept[free[j]]["split"] = "test" if k < n_test else "train"
        report.notes.append(f"{len(free)} rows split at random (seed {seed}): {n_test} test, "
                            f"{len(free) - n_test} train")
    split = np.array([r["split"] for r in kept], dtype=object)
    # long-tail values and attributes that cannot be evaluated
    labels, values = {}, {}
    for attr in attributes:
        raw = [_clean(r["values"].get(attr)) for r in kept]
        counts = Counter(v for v in raw if v is not None)
        keep_vals = sorted(v for v, n in counts.items() if n >= min_count)
        dropped = {v: n for v, n in counts.items() if n < min_count}
        if dropped:
            report.dropped_values[attr] = dict(sorted(dropped.items(), key=lambda kv: (-kv[1], kv[0])))
        index = {v: i for i, v in enumerate(keep_vals)}
        lab = np.array([index.get(v, -1) if v is not None else -1 for v in raw], dtype=np.int64)
        why = None
        if len(keep_vals) < 2:
            why = (f"{len(keep_vals)} value(s) with >= {min_count} images; retrieval needs at least two "
                   f"(values: {dict(counts.most_common(5))})")
        else:
            train_counts = np.bincount(lab[(split == "train") & (lab >= 0)], minlength=len(keep_vals))
            n_test = int(((split == "test") & (lab >= 0)).sum())
            if train_counts.max(initial=0) < 2:
                why = "no value has two training rows"
            elif n_test < 2:
                why = f"{n_test} annotated test row(s); the protocol needs query and candidate rows"
        if why:
            report.removed_attributes[attr] = why
            continue
        labels[attr], values[attr] = lab, keep_vals
    if not labels:
        raise ValueError(f"{dataset}: no attribute is left to evaluate: "
                         + "; ".join(f"{a}: {w}" for a, w in report.removed_attributes.items()))
    annotated = np.zeros(len(kept), dtype=bool)
    for lab in labels.values():
        annotated |= lab >= 0
    report.unannotated_rows = int((~annotated).sum())
    report.unannotated_images = [kept[i]["image"] for i in np.flatnonzero(~annotated)]
    rows = np.flatnonzero(annotated)
    table = FashionTable([kept[i]["image"] for i in rows], {a: l[rows] for a, l in labels.items()}, values,
                         split[rows], name=dataset)
    report.rows = len(table)
    report.split = {s: int((table.split == s).sum()) for s in ("train", "test")}
    report.counts = table.counts()
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_table(table, out / "table.csv")
        listed = "".join(f"{p}\n" for p in watched).encode("utf-8")
        atomic_write_file(out / WATCHED, lambda f: f.write(listed))
        _write_report(report, out)  # last: its images_stamp says the folder is complete
    if not quiet:
        print(report.text())
        if out is not None:
            print(f"wrote {Path(out) / 'table.csv'}")
    return table


def _write_report(report: PrepareReport, out: Path) -> None:
    """``report.json`` (everything, every row and file left out) and ``report.txt`` (the summary)."""
    data, text = json.dumps(report.to_dict(), indent=1).encode("utf-8"), (report.text() + "\n").encode("utf-8")
    atomic_write_file(out / "report.json", lambda f: f.write(data))
    atomic_write_file(out / "report.txt", lambda f: f.write(text))


def _stop_if_problems(dataset: str, report: PrepareReport, out) -> None:
    """``strict``: raise ValueError when anything was left out for a problem in the data
    (after writing the report, which lists all of it)."""
    problems = [*report.skipped_lines, *(f"missing image {p}" for p in report.missing_images),
                *(f"corrupt image {p}" for p in report.corrupt_images)]
    if not problems:
        return
    where = ""
    if out is not None:
        _write_report(report, Path(out))
        where = f"; all of them are listed in {Path(out) / 'report.json'}"
    raise ValueError(f"{dataset}: strict mode stops on {len(problems)} problem(s): "
                     + "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else "") + where)


def _common(**kw) -> dict:
    return {k: kw[k] for k in ("min_count", "seed", "test_fraction", "verify", "strict", "quiet", "progress")}


# ---------------------------------------------------------------------------- Fashion Product Images

FPI_COLUMNS = ("id", "gender", "masterCategory", "subCategory", "articleType", "baseColour", "season", "year",
               "usage", "productDisplayName")
# The visual, reasonably balanced attributes. Left out: masterCategory (a coarser copy of
# subCategory), year (not visible in a photo) and productDisplayName (free text).
FPI_ATTRIBUTES = ("subCategory", "articleType", "baseColour", "gender", "usage", "season")


FPI_FREE_TEXT = "productDisplayName"  # the one free-text column: the only place a stray comma may go
FPI_NUMBERS = ("id", "year")


def read_csv_rows(path: Path, report: PrepareReport) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and ``(line number, fields)`` of every non-blank row of a CSV file, read
    with the csv module (quoted commas and newlines are fine). A row with bytes that are
    not UTF-8 is reported by line number (and the offending byte) and left out."""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""))
    header, rows = None, []
    for row in reader:
        line = reader.line_num
        bad = next((c for c in row if any("\udc80" <= ch <= "\udcff" for ch in c)), None)
        if bad is not None:
            byte = next(ord(ch) - 0xDC00 for ch in bad if "\udc80" <= ch <= "\udcff")
            report.skipped_lines.append(f"{path.name} line {line}: not UTF-8 text (byte 0x{byte:02x}); "
                                        "save the file as UTF-8")
            if header is None:
                raise ValueError(f"{path}: line {line} (the header) is not UTF-8 text (byte 0x{byte:02x})")
            continue
        if header is None:
            header = [h.strip() for h in row]
            continue
        if row and any(c.strip() for c in row):
            rows.append((line, row))
    return header or [], rows


def _placements(row: list[str], header: list[str], vocab: dict[str, set]) -> tuple[list[int], dict[int, str]]:
    """Where the extra fields of a too-long ``row`` can go: the columns ``c`` such that joining
    fields ``c .. c+extra`` into column ``c`` gives a plausible row (numbers where numbers
    belong, other columns holding values seen in well-formed rows). Also why each
    placement fails."""
    extra = len(row) - len(header)
    ok, why = [], {}
    for c in range(len(header)):
        cand = row[:c] + [",".join(row[c:c + extra + 1])] + row[c + extra + 1:]
        for col, v in zip(header, (x.strip() for x in cand)):
            if col in FPI_NUMBERS:
                if not (v.isdigit() or (col != "id" and v == "")):
                    why[c] = f"{col} {v!r} is not a number"
                    break
            elif col != FPI_FREE_TEXT and v and v not in vocab.get(col, ()):
                why[c] = f"{col} {v!r} is not a value of any well-formed row"
                break
        else:
            ok.append(c)
    return ok, why


def read_styles_csv(path: Path, report: PrepareReport, repair_names: bool = True) -> list[dict]:
    """Rows of Kaggle's ``styles.csv`` as dicts; columns are never shifted.

    Kaggle's file has rows with unquoted commas in ``productDisplayName``, the free-text
    last column. A row with extra fields is kept (``repair_names``; reported as repaired)
    only when the extra fields can go into that column and nowhere else: joining them into
    any other column must give an implausible row (a non-number in ``id`` or ``year``, or a
    value no well-formed row has). Otherwise (a stray comma in ``articleType``, say) the row
    is reported by line number and left out. Rows with too few fields, a bad or repeated
    id, or bytes that are not UTF-8 are reported by line number and left out."""
    header, raw = read_csv_rows(path, report)
    if "id" not in header:
        raise ValueError(f"{path}: no 'id' column in the header {header}")
    n = len(header)
    vocab = {col: set() for col in header}
    for _, row in raw:
        if len(row) == n:
            for col, v in zip(header, row):
                vocab[col].add(v.strip())
    rows, seen = [], set()
    for line, row in raw:
        where = f"{path.name} line {line}"
        if len(row) > n:
            ok, why = _placements(row, header, vocab) if header[-1] == FPI_FREE_TEXT else ([], {})
            if repair_names and ok == [n - 1]:
                report.repaired_lines.append(f"{where}: {len(row)} fields for {n} columns; the extra commas "
                                             f"were taken as part of {FPI_FREE_TEXT}")
                row = row[:n - 1] + [",".join(row[n - 1:])]
            else:
                if not repair_names:
                    reason = "repair_names is off"
                elif header[-1] != FPI_FREE_TEXT:
                    reason = f"the last column is {header[-1]!r}, not {FPI_FREE_TEXT}"
                elif n - 1 not in ok:
                    reason = why[n - 1]
                else:
                    reason = "they could also belong to " + ", ".join(header[c] for c in ok if c != n - 1)
                report.skipped_lines.append(f"{where}: {len(row)} fields for {n} columns and the extra comma(s) "
                                            f"cannot be placed in {FPI_FREE_TEXT} alone ({reason}); left out")
                continue
        elif len(row) < n:
            report.skipped_lines.append(f"{where}: {len(row)} fields, expected {n}")
            continue
        rec = dict(zip(header, (c.strip() for c in row)))
        if not rec["id"].isdigit():
            report.skipped_lines.append(f"{where}: id {rec['id']!r} is not a number")
            continue
        if rec["id"] in seen:
            report.skipped_lines.append(f"{where}: id {rec['id']} repeats an earlier row")
            continue
        seen.add(rec["id"])
        rec["_line"] = line
        rows.append(rec)
    return rows


def prepare_fashion_product_images(data_dir, out=None, *, attributes=FPI_ATTRIBUTES, min_count: int = 150,
                                   seed: int = 0, test_fraction: float = 0.25, verify: bool = True,
                                   strict: bool = False, quiet: bool = False, progress: bool = True,
                                   repair_names: bool = True) -> FashionTable:
    """Kaggle "Fashion Product Images (Small)": ``styles.csv`` + ``images/<id>.jpg``.

    ``min_count`` (default 150, about 1.5% of the 9.6k-image subset, 0.3% of the full
    44k): values with fewer images are dropped for that attribute (label -1). A row
    without its image is left out and counted (Kaggle's styles.csv lists a few).
    """
    root = Path(data_dir).expanduser().resolve()
    _check_layout("fashion-product-images", root, ["styles.csv", "images"])
    report = PrepareReport("fashion-product-images", str(root / "styles.csv"))
    rows = read_styles_csv(root / "styles.csv", report, repair_names=repair_names)
    attributes = list(attributes)
    header = set(rows[0]) if rows else set()
    missing_cols = [a for a in attributes if rows and a not in header]
    if missing_cols:
        raise ValueError(f"{root / 'styles.csv'}: no column(s) {missing_cols}; columns: {sorted(header - {'_line'})}")
    images_dir = root / "images"
    on_disk = {e.name for e in os.scandir(images_dir) if e.is_file()}
    records, listed = [], set()
    for rec in rows:
        name = f"{rec['id']}.jpg"
        listed.add(name)
        records.append({"image": str(images_dir / name), "split": None,
                        "values": {a: rec.get(a) for a in attributes}})
    report.unused_images = sorted(str(images_dir / n) for n in on_disk if n.lower().endswith(".jpg")
                                  and n not in listed)
    n_missing = sum(1 for r in records if Path(r["image"]).name not in on_disk)
    if n_missing:
        report.notes.append(f"{n_missing} row(s) of styles.csv have no image in images/ (Kaggle lists a few); "
                            "left out")
    return _build("fashion-product-images", str(root / "styles.csv"), records, attributes, out, report=report,
                  **_common(min_count=min_count, seed=seed, test_fraction=test_fraction, verify=verify,
                            strict=strict, quiet=quiet, progress=progress))


# ---------------------------------------------------------------------------- ASEN split files

def _asen_split(root: Path, key=lambda p: p) -> dict[str, str] | None:
    """ASEN's ``filenames_{train,valid,test}.txt`` in ``root``, as ``{key(path): split}``;
    ``valid`` counts as ``train`` (this package does no model selection). None when absent."""
    files = {s: root / f"filenames_{s}.txt" for s in ("train", "valid", "test")}
    if not files["train"].is_file() and not files["test"].is_file():
        return None
    for s in ("train", "test"):
        if not files[s].is_file():
            raise DatasetLayoutError(f"ASEN split in {root} is incomplete: missing {files[s].name}")
    out = {}
    for s, f in files.items():
        if f.is_file():
            for line in _read_lines(f):
                if line.strip():
                    out.setdefault(key(line.strip()), "test" if s == "test" else "train")
    return out


# ---------------------------------------------------------------------------- FashionAI

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
        _check_layout("fashionai", root, [])
    label_files = sorted(root.glob("Annotations/label.csv")) + sorted(root.glob("*/Annotations/label.csv"))
    if not label_files:
        _check_layout("fashionai", root, ["Annotations/label.csv"])
    report = PrepareReport("fashionai", ", ".join(str(p) for p in label_files))
    split_of = _asen_split(root, key=lambda p: Path(p).name)
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
    return _build("fashionai", report.source, list(merged.values()), attributes, out, report=report,
                  **_common(min_count=min_count, seed=seed, test_fraction=test_fraction, verify=verify,
                            strict=strict, quiet=quiet, progress=progress))


# ---------------------------------------------------------------------------- DARN (ASEN layout)

DARN_ATTRIBUTES = {  # ASEN's DARN attributes and their numbers of values, in ASEN's order
    "clothes category": 20, "clothes button": 13, "clothes color": 55, "clothes length": 7,
    "clothes pattern": 28, "clothes shape": 11, "collar shape": 26, "sleeve length": 8, "sleeve shape": 17,
}


def _column_name(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "_", name.strip()).strip("_").lower()


def _read_meta(root: Path, dataset_key: str) -> dict | None:
    """ASEN's meta.json (in ``root`` or its parent; flat, or keyed by dataset name)."""
    for p in (root / "meta.json", root.parent / "meta.json"):
        if p.is_file():
            try:
                meta = json.loads(p.read_text())
            except json.JSONDecodeError as err:
                raise ValueError(f"{p}: not valid JSON ({err})") from err
            if "ATTRIBUTES" in meta:
                return meta
            for k, v in meta.items():
                if k.lower() == dataset_key.lower() and isinstance(v, dict) and "ATTRIBUTES" in v:
                    return v
    return None


def prepare_asen_layout(dataset: str, data_dir, out=None, *, default_attributes: dict[str, int],
                        dataset_key: str, attributes=None, min_count: int = 20, seed: int = 0,
                        test_fraction: float = 0.25, verify: bool = True, strict: bool = False,
                        quiet: bool = False, progress: bool = True) -> FashionTable:
    """A dataset in ASEN's released split layout (as used for DARN):

    * ``filenames_{train,valid,test}.txt``: one image path per line, relative to ``data_dir``;
    * ``label_train.txt``: ``file_index attribute_index value_index [attribute_index value_index ...]``
      (indices into ``filenames_train.txt``);
    * ``query_{valid,test}.txt``, ``candidate_{valid,test}.txt``: ``file_index attribute_index
      value_index`` (into ``filenames_{valid,test}.txt``);
    * ``meta.json`` (optional, here or one folder up): ``ATTRIBUTES``, ``ATTRIBUTES_NUM`` and,
      when given, ``ATTRIBUTES_VALUES``; else ``default_attributes`` and values named
      ``<attribute>_<index>``.

    Train rows come from ``label_train.txt``, test rows from ASEN's test queries and
    candidates (valid ones count as train). Our protocol redraws the query/candidate split
    of the test rows at random, so the numbers are comparable with ASEN's, not identical.
    """
    root = Path(data_dir).expanduser().resolve()
    _check_layout(dataset, root, ["filenames_train.txt", "filenames_test.txt", "label_train.txt",
                                  "query_test.txt", "candidate_test.txt"])
    report = PrepareReport(dataset, str(root))
    meta = _read_meta(root, dataset_key)
    if meta is None:
        names = list(default_attributes)
        nums = dict(default_attributes)
        value_names = {a: [f"{_column_name(a)}_{k}" for k in range(n)] for a, n in nums.items()}
        report.notes.append("no meta.json found: ASEN's attribute list used, values named <attribute>_<index>")
    else:
        names = list(meta["ATTRIBUTES"])
        nums = meta.get("ATTRIBUTES_NUM", {})
        nums = nums if isinstance(nums, dict) else dict(zip(names, nums))
        given = meta.get("ATTRIBUTES_VALUES", {})
        value_names = {}
        for a in names:
            n = nums.get(a, default_attributes.get(a))
            if a not in given and n is None:
                raise ValueError(f"{dataset}: meta.json gives neither ATTRIBUTES_NUM nor ATTRIBUTES_VALUES for {a!r}")
            value_names[a] = list(given[a]) if a in given else [f"{_column_name(a)}_{k}" for k in range(int(n))]
    columns = {a: _column_name(a) for a in names}
    files = {s: _read_lines(root / f"filenames_{s}.txt") for s in ("train", "valid", "test")
             if (root / f"filenames_{s}.txt").is_file()}
    records: dict[str, dict] = {}

    def add(split_name, fname_list, path_txt, multi):
        p = root / path_txt
        if not p.is_file():
            return
        for line_no, line in enumerate(_read_lines(p), start=1):
            if not line.strip():
                continue
            where = f"{path_txt} line {line_no}"
            try:
                nums_ = [int(t) for t in line.split()]
            except ValueError:
                report.skipped_lines.append(f"{where}: not integers: {line[:60]!r}")
                continue
            if len(nums_) < 3 or (len(nums_) - 1) % 2 or (not multi and len(nums_) != 3):
                report.skipped_lines.append(f"{where}: expected 'file attribute value"
                                            f"{' [attribute value ...]' if multi else ''}', got {line[:60]!r}")
                continue
            fid, pairs = nums_[0], list(zip(nums_[1::2], nums_[2::2]))
            if not 0 <= fid < len(fname_list) or not fname_list[fid].strip():
                report.skipped_lines.append(f"{where}: file index {fid} is not a line of filenames_{split_name}.txt")
                continue
            rel = fname_list[fid].strip()
            split = "test" if split_name == "test" else "train"
            rec = records.setdefault(rel, {"image": str(root / rel), "split": split, "values": {}})
            if rec["split"] != split:
                report.skipped_lines.append(f"{where}: {rel} is in both the train and the test split; kept in "
                                            f"{rec['split']}")
                continue
            for a, v in pairs:
                if not 0 <= a < len(names) or not 0 <= v < len(value_names[names[a]]):
                    report.skipped_lines.append(f"{where}: attribute {a} value {v} out of range")
                    continue
                col, val = columns[names[a]], value_names[names[a]][v]
                old = rec["values"].get(col)
                if old is not None and old != val:
                    report.skipped_lines.append(f"{where}: {rel} has two values for {names[a]!r} "
                                                f"({old!r}, {val!r}); the first is kept")
                    continue
                rec["values"][col] = val

    add("train", files["train"], "label_train.txt", multi=True)
    for s in ("valid", "test"):
        if s in files:
            for kind in ("query", "candidate"):
                add(s, files[s], f"{kind}_{s}.txt", multi=False)
    report.notes.append("split from ASEN's files (valid counted as train); query/candidate redrawn at random")
    attrs = [columns[a] for a in names] if attributes is None else list(attributes)
    return _build(dataset, str(root), list(records.values()), attrs, out, report=report,
                  **_common(min_count=min_count, seed=seed, test_fraction=test_fraction, verify=verify,
                            strict=strict, quiet=quiet, progress=progress))


def prepare_darn(data_dir, out=None, *, attributes=None, min_count: int = 20, seed: int = 0,
                 test_fraction: float = 0.25, verify: bool = True, strict: bool = False, quiet: bool = False,
                 progress: bool = True) -> FashionTable:
    """DARN in ASEN's released layout (see :func:`prepare_asen_layout`); columns are ASEN's
    attribute names in snake case (``clothes_category``, ..., ``sleeve_shape``)."""
    return prepare_asen_layout("darn", data_dir, out, default_attributes=DARN_ATTRIBUTES, dataset_key="DARN",
                               attributes=attributes, min_count=min_count, seed=seed, test_fraction=test_fraction,
                               verify=verify, strict=strict, quiet=quiet, progress=progress)


# ---------------------------------------------------------------------------- DeepFashion

DEEPFASHION_TYPES = {1: "texture", 2: "fabric", 3: "shape", 4: "part", 5: "style"}  # ASEN's five attributes


def _counted_lines(path: Path, report: PrepareReport) -> list[tuple[int, str]]:
    """DeepFashion's list files: a count, a header, then rows. Returns ``(line number, text)``;
    a count that differs from the rows is reported."""
    lines = _read_lines(path)
    if len(lines) < 2:
        raise ValueError(f"{path}: expected a count line and a header line, found {len(lines)} line(s)")
    body = [(i, l) for i, l in enumerate(lines[2:], start=3) if l.strip()]
    try:
        declared = int(lines[0].strip())
    except ValueError:
        raise ValueError(f"{path} line 1: expected the number of rows, got {lines[0][:40]!r}") from None
    if declared != len(body):
        report.notes.append(f"{path.name} declares {declared} rows but has {len(body)}")
    return body


def prepare_deepfashion(data_dir, out=None, *, attributes=tuple(DEEPFASHION_TYPES.values()), min_count: int = 100,
                        seed: int = 0, test_fraction: float = 0.25, verify: bool = True, strict: bool = False,
                        quiet: bool = False, progress: bool = True) -> FashionTable:
    """DeepFashion Category and Attribute Prediction: 1000 binary attributes, grouped by
    ``list_attr_cloth.txt`` into five types (texture, fabric, shape, part, style), which
    are ASEN's five attributes. An image gets a value for a type when exactly one of that
    type's attributes is positive (several: ambiguous for retrieval, counted in the report;
    none: not annotated). Split: ``list_eval_partition.txt`` (val counted as train), or
    ASEN's ``filenames_*.txt`` when they lie in ``data_dir``.
    """
    root = Path(data_dir).expanduser().resolve()
    _check_layout("deepfashion", root, ["Anno/list_attr_img.txt", "Anno/list_attr_cloth.txt",
                                        "Eval/list_eval_partition.txt", "img"])
    report = PrepareReport("deepfashion", str(root / "Anno/list_attr_img.txt"))
    cloth = []
    for line_no, line in _counted_lines(root / "Anno/list_attr_cloth.txt", report):
        parts = line.rsplit(None, 1)  # names contain spaces ("peter pan collar  4")
        if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) not in DEEPFASHION_TYPES:
            raise ValueError(f"{root / 'Anno/list_attr_cloth.txt'} line {line_no}: expected 'name type(1-5)', "
                             f"got {line[:60]!r}")
        cloth.append((parts[0].strip(), DEEPFASHION_TYPES[int(parts[1])]))
    by_type = {t: np.array([i for i, (_, tt) in enumerate(cloth) if tt == t]) for t in DEEPFASHION_TYPES.values()}
    part = {}
    for line_no, line in _counted_lines(root / "Eval/list_eval_partition.txt", report):
        bits = line.split()
        if len(bits) != 2 or bits[1] not in ("train", "val", "test"):
            report.skipped_lines.append(f"list_eval_partition.txt line {line_no}: expected 'image train|val|test'")
            continue
        part[bits[0]] = "test" if bits[1] == "test" else "train"
    asen = _asen_split(root)
    if asen is not None:
        report.notes.append("split from ASEN's filenames_{train,valid,test}.txt (valid counted as train)")
    ambiguous = Counter()
    records = []
    for line_no, line in _counted_lines(root / "Anno/list_attr_img.txt", report):
        bits = line.split()
        where = f"list_attr_img.txt line {line_no}"
        if len(bits) != len(cloth) + 1:
            report.skipped_lines.append(f"{where}: {len(bits) - 1} labels, expected {len(cloth)}")
            continue
        try:
            lab = np.array(bits[1:], dtype=np.int8)
        except ValueError:
            report.skipped_lines.append(f"{where}: labels are not -1/0/1")
            continue
        img = bits[0]
        split = (asen or part).get(img)
        if split is None:
            report.skipped_lines.append(f"{where}: {img} is not in "
                                        f"{'ASEN split files' if asen is not None else 'list_eval_partition.txt'}")
            continue
        values = {}
        for t, idx in by_type.items():
            pos = idx[lab[idx] == 1]
            if len(pos) == 1:
                values[t] = cloth[pos[0]][0]
            elif len(pos) > 1:
                ambiguous[t] += 1
        records.append({"image": str(root / img), "split": split, "values": values})
    for t, n in ambiguous.items():
        report.notes.append(f"{n} images have several positive {t} attributes: not annotated for {t}")
    return _build("deepfashion", report.source, records, list(attributes), out, report=report,
                  **_common(min_count=min_count, seed=seed, test_fraction=test_fraction, verify=verify,
                            strict=strict, quiet=quiet, progress=progress))


# ---------------------------------------------------------------------------- UT-Zappos50K

ZAPPOS_COLUMNS = ("Category", "SubCategory", "HeelHeight", "Insole", "Closure", "Gender", "Material", "ToeStyle")
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
    _check_layout("zappos50k", root, ["ut-zap50k-data/meta-data.csv"],
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
                v = _clean(rec[a])
                if v is not None and ";" in v:
                    multi[a] += 1
                    v = None
                values[a] = v
            path = by_cid.get(cid, str(img_root / f"{cid.replace('-', '.')}.jpg"))
            records.append({"image": path, "split": None, "values": values})
    for a, n in multi.items():
        report.notes.append(f"{n} rows have several {a} values (a;b): not annotated for {a}")
    return _build("zappos50k", str(csv_path), records, list(attributes), out, report=report,
                  **_common(min_count=min_count, seed=seed, test_fraction=test_fraction, verify=verify,
                            strict=strict, quiet=quiet, progress=progress))


# ---------------------------------------------------------------------------- registry and cache

PREPARERS = {
    "fashion-product-images": prepare_fashion_product_images,
    "fashionai": prepare_fashionai,
    "darn": prepare_darn,
    "deepfashion": prepare_deepfashion,
    "zappos50k": prepare_zappos50k,
}
REAL_DATASETS = tuple(PREPARERS)
ANNOTATION_FILES = {  # what the prepared-table cache key watches (size, mtime, inode)
    "fashion-product-images": ["styles.csv"],
    "fashionai": ["Annotations/label.csv", "*/Annotations/label.csv", "filenames_*.txt"],
    "darn": ["filenames_*.txt", "label_*.txt", "query_*.txt", "candidate_*.txt", "meta.json", "../meta.json"],
    "deepfashion": ["Anno/list_attr_img.txt", "Anno/list_attr_cloth.txt", "Eval/list_eval_partition.txt",
                    "filenames_*.txt"],
    "zappos50k": ["ut-zap50k-data/meta-data.csv"],
}
WATCHED = "watched_images.txt"  # beside a prepared table: every image path its annotations name


def prepared_fingerprint(name: str, data_dir, **options) -> dict:
    """What decides a prepared table (:func:`mclfir_lite.training.checkpoint.fingerprint`): the dataset
    folder, the options, its annotation files (:data:`ANNOTATION_FILES`: names, sizes,
    mtimes, inodes, symlinks followed), :data:`PREPARER_VERSION`, the package version and
    the code digest. Other files in the folder (a ``notes.txt``, a run's ``--out``) do not
    count; the images the annotations name are watched by :func:`load_prepared`
    (:func:`~mclfir_lite.data.table.images_stamp`), which prepares the table again when one of
    them changes, appears or goes."""
    from ..training.checkpoint import code_fields, fingerprint
    root = Path(data_dir).expanduser().resolve()
    stamp = []
    for pattern in ANNOTATION_FILES[name]:
        for p in sorted(glob.glob(str(root / pattern))):
            st = os.stat(p)
            stamp.append((os.path.relpath(p, root), st.st_size, st.st_mtime_ns, st.st_ino))
    return fingerprint({"name": name, "root": str(root), "options": json.dumps(options, sort_keys=True, default=str),
                        "annotations": stamp, "preparer": PREPARER_VERSION, **code_fields()})


def prepared_dir(name: str, data_dir, **options) -> Path:
    """``<cache>/prepared/<name>-<hash>``, ``hash`` from :func:`prepared_fingerprint`: a
    change to an annotation file, an option or the code gives a new folder (prepared
    again), never a stale table."""
    return cache_dir() / "prepared" / f"{name}-{prepared_fingerprint(name, data_dir, **options)['hash'][:12]}"


def _stale(out: Path) -> str | None:
    """Why the prepared table in ``out`` cannot be used as it is, or None: a file missing or
    damaged (then one line names it), or an image its annotations name that changed,
    appeared or went since it was prepared."""
    from .table import cache_notice, images_stamp
    csv_path, report_path, watched_path = out / "table.csv", out / "report.json", out / WATCHED
    if not csv_path.is_file():
        return "not prepared yet"
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
        stamp = report.get("images_stamp") if isinstance(report, dict) else None
        if not stamp or not isinstance(stamp, str) or not isinstance(report.get("removed_attributes", {}), dict):
            raise ValueError("no images_stamp, or removed_attributes that is not a mapping")
    except (OSError, ValueError) as err:
        cache_notice(report_path, f"{type(err).__name__}: {err}", "preparing the table again")
        return "damaged"
    try:
        watched = watched_path.read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError) as err:
        cache_notice(watched_path, f"{type(err).__name__}: {err}", "preparing the table again")
        return "damaged"
    if images_stamp(watched) != stamp:
        return f"an image its annotations name changed, appeared or went since it was prepared ({len(watched)} watched)"
    return None


def load_prepared(name: str, data_dir, *, rebuild: bool = False, strict: bool = False, quiet: bool = False,
                  progress: bool = True, **options) -> FashionTable:
    """The table of real dataset ``name`` from ``data_dir``: prepared once (see the module
    docstring) into :func:`prepared_dir`, read from there afterwards. It is prepared again
    when ``rebuild``, when an image its annotations name changed (size, mtime or inode),
    and when the prepared files are damaged (one line names the file). ``strict`` stops on
    any problem the preparer reports (a table prepared strictly is cached apart);
    ``progress``: the preparer's progress bar. The table's ``removed_attributes`` says
    which attributes the preparer removed, and why."""
    if name not in PREPARERS:
        raise ValueError(f"unknown real dataset {name!r}; choose from {list(PREPARERS)}")
    if data_dir is None:
        raise ValueError(f"dataset {name!r} needs --data-dir PATH (its unpacked folder).\n\nHow to get it:\n"
                         f"{HOW_TO_GET[name]}")
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        _check_layout(name, root, [])
    # a strict preparation has its own folder: when it stops, its report never replaces the
    # report that belongs to a cached table of a lenient one
    out = prepared_dir(name, data_dir, **options, **({"strict": True} if strict else {}))
    csv_path = out / "table.csv"
    why = "asked (--rebuild)" if rebuild else _stale(out)
    table = None
    if why is None:
        try:
            table = read_table(csv_path, quiet=True)
        except (ValueError, FileNotFoundError) as err:  # a damaged table.csv (a partial copy, an edit)
            from .table import cache_notice
            cache_notice(csv_path, str(err).removeprefix(f"{csv_path}: "), "preparing the table again")
        else:
            if not quiet:
                print(f"{name}: using the prepared table {csv_path} (report: {out / 'report.txt'}; --rebuild "
                      "prepares it again)")
    if table is None:
        if not quiet and why not in (None, "not prepared yet", "damaged", "asked (--rebuild)"):
            print(f"{name}: preparing the table again: {why}")
        PREPARERS[name](data_dir, out, quiet=quiet, strict=strict, progress=progress, **options)
        table = read_table(csv_path, quiet=True)
    table.removed_attributes = json.loads((out / "report.json").read_text(encoding="utf-8")).get(
        "removed_attributes", {})
    return table


# ---------------------------------------------------------------------------- downloads

def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: str | Path, sha256: str | None = None, timeout: float = 30.0,
             progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` once, verified by ``sha256``.

    A file already at ``dest`` is never downloaded again: it is checked against
    ``sha256`` (an error, not an overwrite, when it differs). Without a network, or on a
    time-out (``timeout`` seconds per read), raises :class:`DownloadError` saying to give
    a local path instead. A wrong checksum removes the download and raises ValueError.
    """
    dest = Path(dest)
    want = sha256.lower() if sha256 else None
    if dest.is_file():
        if want is not None:
            got = sha256_of(dest)
            if got != want:
                raise ValueError(f"{dest} exists but its sha256 is {got}, expected {want}; "
                                 "delete it to download it again")
        print(f"{dest} is already here; not downloading it again")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    got = None

    def offline(err: BaseException) -> DownloadError:
        return DownloadError(f"could not download {url}: {err}. Without a network, download the file "
                             "yourself and give its local path (for a dataset: --data-dir PATH).")

    network_errors = (urllib.error.URLError, TimeoutError, OSError, ValueError)

    def fetch(f):  # into a temp file beside dest, created without following links; renamed when verified
        nonlocal got
        from tqdm.auto import tqdm
        digest = hashlib.sha256()
        try:
            resp = urllib.request.urlopen(url, timeout=timeout)
            total = int(resp.headers.get("Content-Length") or 0) or None
        except network_errors as err:
            raise offline(err) from err
        with resp, tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {dest.name}",
                        disable=not progress) as bar:
            while True:
                try:
                    block = resp.read(1 << 20)
                except network_errors as err:
                    raise offline(err) from err
                if not block:
                    break
                f.write(block)   # an error here is about the local file: it names it (full disk, ...)
                digest.update(block)
                bar.update(len(block))
        got = digest.hexdigest()
        if want is not None and got != want:
            raise ChecksumError(f"checksum mismatch for {url}: sha256 {got}, expected {want}; the download was removed")

    atomic_write_file(dest, fetch)
    if want is None:
        print(f"warning: no checksum given for {url}; its sha256 is {got} (pass it to verify next time)",
              file=sys.stderr)
    return dest


def safe_extract(archive: str | Path, target: str | Path) -> Path:
    """Unpack the zip ``archive`` into ``target``; returns ``target``. A member that would land
    outside ``target`` (``../x``, an absolute path, or through a symlinked folder) is refused
    with ValueError before anything is written; each file is written through a temp file made
    without following links, and a symlink planted at a member's name is refused
    (:class:`~mclfir_lite.training.checkpoint.UnsafeFileError`), never written through."""
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    with zipfile.ZipFile(archive) as z:
        for member in z.namelist():
            p = (target / member).resolve()
            if not str(p).startswith(str(root) + os.sep) and p != root:
                raise ValueError(f"{archive}: member {member!r} would be written outside {target}")
        for info in z.infolist():
            dest = target / info.filename
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            with z.open(info) as src:
                atomic_write_file(dest, lambda f: shutil.copyfileobj(src, f, 1 << 20))
    return target


def fetch_fashion_product_images(url: str | None = None, sha256: str | None = None, dest: str | Path | None = None,
                                 timeout: float = 30.0) -> Path:
    """Download (once) and unpack Fashion Product Images (Small) from ``url`` (default: the
    environment variable ``MCLFIR_FPI_URL``; checksum ``MCLFIR_FPI_SHA256``), e.g. a copy on
    your own server: Kaggle itself needs credentials. Returns the folder holding
    ``styles.csv``. Unpacking is skipped when it was done before."""
    url = url or os.environ.get("MCLFIR_FPI_URL")
    sha256 = sha256 or os.environ.get("MCLFIR_FPI_SHA256")
    if not url:
        raise DownloadError("no download URL given (--download-url or MCLFIR_FPI_URL).\n\n"
                            + HOW_TO_GET["fashion-product-images"])
    dest = Path(dest) if dest else cache_dir() / "downloads"
    archive = download(url, dest / (Path(urllib.parse.urlparse(url).path).name or "fashion-product-images.zip"),
                       sha256=sha256, timeout=timeout)
    target = dest / "fashion-product-images-small"
    marker = target / ".unpacked"
    if not marker.is_file():
        target.mkdir(parents=True, exist_ok=True)
        safe_extract(archive, target)
        digest = sha256_of(archive).encode()
        atomic_write_file(marker, lambda f: f.write(digest))
    found = sorted(target.rglob("styles.csv"), key=lambda p: len(p.parts))
    if not found:
        raise DatasetLayoutError(f"{archive} holds no styles.csv; is it Fashion Product Images (Small)?\n\n"
                                 + HOW_TO_GET["fashion-product-images"])
    return found[0].parent


# ---------------------------------------------------------------------------- command line

def main(dataset: str, argv: list[str] | None = None) -> int:
    """The command line of ``data_scripts/prepare_<dataset>.py``."""
    prep = PREPARERS[dataset]
    p = argparse.ArgumentParser(prog=f"prepare_{dataset.replace('-', '_')}.py",
                                description=(prep.__doc__ or "").strip().split("\n")[0],
                                epilog="How to get the data:\n" + HOW_TO_GET[dataset],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=dataset != "fashion-product-images",
                   help="the dataset's unpacked folder, in its published layout")
    p.add_argument("--out", required=True, help="output folder for table.csv and report.json")
    p.add_argument("--attributes", nargs="+", default=None, help="attribute columns to keep (default: see docs)")
    p.add_argument("--min-count", type=int, default=None, help="drop values with fewer images (per attribute)")
    p.add_argument("--test-fraction", type=float, default=0.25, help="test share where the dataset has no split")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-verify", action="store_true", help="do not decode every image (faster, less safe)")
    p.add_argument("--strict", action="store_true",
                   help="stop on any problem (a skipped line, a missing or corrupt image) instead of leaving "
                        "the row out; report.json lists them all")
    if dataset == "fashion-product-images":
        p.add_argument("--download-url", default=None, help="a URL of the dataset zip (else MCLFIR_FPI_URL)")
        p.add_argument("--sha256", default=None, help="its sha256 (else MCLFIR_FPI_SHA256)")
    args = p.parse_args(argv)
    kw = {"seed": args.seed, "test_fraction": args.test_fraction, "verify": not args.no_verify,
          "strict": args.strict}
    if args.attributes:
        kw["attributes"] = args.attributes
    if args.min_count is not None:
        kw["min_count"] = args.min_count
    try:
        data_dir = args.data_dir
        if data_dir is None:
            if not (args.download_url or os.environ.get("MCLFIR_FPI_URL")):
                raise DownloadError("give --data-dir PATH (the unpacked dataset) or --download-url URL.\n\n"
                                    + HOW_TO_GET[dataset])
            data_dir = fetch_fashion_product_images(args.download_url, args.sha256)
        prep(data_dir, args.out, **kw)
    except (DatasetLayoutError, DownloadError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # PermissionError, NotADirectoryError, disk full: one line with the path
        from ..cli.main import _os_message
        print(f"error: {_os_message(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: {args.out} was not (fully) written; run the same command again", file=sys.stderr)
        return 130
    return 0
