"""Fashion Product Images (Small), Kaggle: ``styles.csv`` + ``images/<id>.jpg``.
:func:`prepare_fashion_product_images` reads it (a stray comma in the free-text column is
repaired, every other damaged line reported) into the project's table, with a seeded
train/test split; :func:`fetch_fashion_product_images` downloads and unpacks a copy you host.
"""
from __future__ import annotations

import csv
import io
import os
import urllib.parse
from pathlib import Path

from ..files import atomic_write_file
from .table import FashionTable
from ..settings import cache_dir
from .realutils import (
    HOW_TO_GET, DatasetLayoutError, DownloadError, PrepareReport, check_layout, build_table,
    common_options, sha256_of, download, safe_extract,)


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
    check_layout("fashion-product-images", root, ["styles.csv", "images"])
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
    return build_table("fashion-product-images", str(root / "styles.csv"), records, attributes, out, report=report,
                  **common_options(min_count=min_count, seed=seed, test_fraction=test_fraction, verify=verify,
                            strict=strict, quiet=quiet, progress=progress))



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
