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
not count). :func:`~mclfir_lite.data.realutils.download` fetches a file once, with a checksum
and a time-out, and says what to do instead when there is no network;
:func:`~mclfir_lite.data.realutils.safe_extract` unpacks a zip archive, refusing members that
would land outside the target folder.

Where the code is: one module per dataset (:mod:`~mclfir_lite.data.fashion_product_images`,
:mod:`~mclfir_lite.data.fashionai`, :mod:`~mclfir_lite.data.darn`,
:mod:`~mclfir_lite.data.deepfashion`, :mod:`~mclfir_lite.data.zappos50k`), what they share in
:mod:`~mclfir_lite.data.realutils` (errors, report, checks, table builder, download, unpack),
and here the registry (:data:`PREPARERS`), the prepared-table cache and the command line of
``data_scripts/prepare_*.py``.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from pathlib import Path

from ..files import os_message
from .table import FashionTable, read_table
from ..settings import cache_dir
from .realutils import WATCHED, PREPARER_VERSION, HOW_TO_GET, DatasetLayoutError, DownloadError, check_layout
from .darn import prepare_darn
from .deepfashion import prepare_deepfashion
from .fashion_product_images import fetch_fashion_product_images, prepare_fashion_product_images
from .fashionai import prepare_fashionai
from .zappos50k import prepare_zappos50k


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


def prepared_fingerprint(name: str, data_dir, **options) -> dict:
    """What decides a prepared table (:func:`mclfir_lite.files.fingerprint`): the dataset
    folder, the options, its annotation files (:data:`ANNOTATION_FILES`: names, sizes,
    mtimes, inodes, symlinks followed), :data:`PREPARER_VERSION`, the package version and
    the code digest. Other files in the folder (a ``notes.txt``, a run's ``--out``) do not
    count; the images the annotations name are watched by :func:`load_prepared`
    (:func:`~mclfir_lite.data.table.images_stamp`), which prepares the table again when one of
    them changes, appears or goes."""
    from ..files import code_fields, fingerprint
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
        check_layout(name, root, [])
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
        print(f"error: {os_message(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: {args.out} was not (fully) written; run the same command again", file=sys.stderr)
        return 130
    return 0
