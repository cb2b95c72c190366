"""Shared by the real-dataset preparers (as ``torchvision.datasets.utils`` is for
torchvision's datasets): where to get each dataset (:data:`HOW_TO_GET`), the errors, the
report (:class:`PrepareReport`), the checks every preparer makes (:func:`check_layout`,
:func:`check_image`), the table builder that applies the rules of
:mod:`mclfir_lite.data.realdata` (:func:`build_table`), ASEN's split files
(:func:`asen_split`), and downloading (:func:`download`, with a checksum and a time-out) and
unpacking (:func:`safe_extract`, refusing members that would land outside the target).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import urllib.error
import urllib.request
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..files import atomic_write_file
from .table import FashionTable, images_stamp, write_table


PREPARER_VERSION = 1  # bump when a preparer's output changes, so cached tables are rebuilt
WATCHED = "watched_images.txt"  # beside a prepared table: every image path its annotations name
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

def check_layout(dataset: str, root: Path, required: list[str], alternatives: dict[str, list[str]] | None = None) -> None:
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


def clean_value(value) -> str | None:
    value = "" if value is None else str(value).strip()
    return None if value in MISSING_VALUES else value


def read_lines(path: Path) -> list[str]:
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


def build_table(dataset: str, source: str, records: list[dict], attributes: list[str], out: str | Path | None, *,
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
        stop_if_problems(dataset, report, out)
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
        raw = [clean_value(r["values"].get(attr)) for r in kept]
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
        write_report(report, out)  # last: its images_stamp says the folder is complete
    if not quiet:
        print(report.text())
        if out is not None:
            print(f"wrote {Path(out) / 'table.csv'}")
    return table


def write_report(report: PrepareReport, out: Path) -> None:
    """``report.json`` (everything, every row and file left out) and ``report.txt`` (the summary)."""
    data, text = json.dumps(report.to_dict(), indent=1).encode("utf-8"), (report.text() + "\n").encode("utf-8")
    atomic_write_file(out / "report.json", lambda f: f.write(data))
    atomic_write_file(out / "report.txt", lambda f: f.write(text))


def stop_if_problems(dataset: str, report: PrepareReport, out) -> None:
    """``strict``: raise ValueError when anything was left out for a problem in the data
    (after writing the report, which lists all of it)."""
    problems = [*report.skipped_lines, *(f"missing image {p}" for p in report.missing_images),
                *(f"corrupt image {p}" for p in report.corrupt_images)]
    if not problems:
        return
    where = ""
    if out is not None:
        write_report(report, Path(out))
        where = f"; all of them are listed in {Path(out) / 'report.json'}"
    raise ValueError(f"{dataset}: strict mode stops on {len(problems)} problem(s): "
                     + "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else "") + where)


def common_options(**kw) -> dict:
    return {k: kw[k] for k in ("min_count", "seed", "test_fraction", "verify", "strict", "quiet", "progress")}


# ---------------------------------------------------------------------------- ASEN split files

def asen_split(root: Path, key=lambda p: p) -> dict[str, str] | None:
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
            for line in read_lines(f):
                if line.strip():
                    out.setdefault(key(line.strip()), "test" if s == "test" else "train")
    return out


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
    (:class:`~mclfir_lite.files.UnsafeFileError`), never written through."""
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
