"""The dataset layer: one table format for every dataset, the ASEN retrieval protocol,
doublet / triplet sampling, and increment plans.

A :class:`FashionTable` is the only thing the rest of the package knows about data:

* ``images``: either a uint8 array ``(N, H, W, 3)`` (SynthFashion renders in memory) or
  a list of ``N`` image paths (real datasets);
* ``labels``: ``{attribute: int64 array (N,)}`` indexing ``values[attribute]``; ``-1``
  means "not annotated for this attribute" (FashionAI labels one attribute per image);
* ``values``: ``{attribute: [value names]}``;
* ``split``: ``"train"`` or ``"test"`` per row.

On disk a table is a CSV file with the columns ``image,split,<attribute>...``: image
paths relative to the CSV's folder, attribute values as strings, an empty cell for
"not annotated". :func:`read_table` validates it and names the row or column at fault.

The ASEN protocol (:func:`make_protocol`): per attribute, the training rows are the
``train`` rows annotated for it; its ``test`` rows are split at random into a disjoint
query set and candidate set. A candidate is relevant to a query when they share the
attribute's value.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..files import atomic_write_file
from ..settings import cache_dir

SPLITS = ("train", "test")
QUERY_FRACTION = 0.25  # of each attribute's test rows are queries; the rest are candidates


@dataclass
class FashionTable:
    """Images, their attribute labels and their split (see the module docstring)."""

    images: np.ndarray | list[str]
    labels: dict[str, np.ndarray]
    values: dict[str, list[str]]
    split: np.ndarray
    name: str = "table"

    def __post_init__(self):
        self.labels = {a: np.asarray(v, dtype=np.int64) for a, v in self.labels.items()}
        self.values = {a: list(v) for a, v in self.values.items()}
        self.split = np.asarray(self.split, dtype=object)
        self.validate()

    @property
    def attributes(self) -> list[str]:
        return list(self.labels)

    def __len__(self) -> int:
        return len(self.split)

    def validate(self) -> None:
        """Check lengths, label ranges and split names; raise ValueError naming the culprit."""
        n = len(self.split)
        if len(self.images) != n:
            raise ValueError(f"{self.name}: {len(self.images)} images but {n} split entries")
        if set(self.labels) != set(self.values):
            raise ValueError(f"{self.name}: attributes with labels {sorted(self.labels)} "
                             f"differ from attributes with value names {sorted(self.values)}")
        for attr, lab in self.labels.items():
            if lab.shape != (n,):
                raise ValueError(f"{self.name}: labels of {attr!r} have shape {lab.shape}, expected ({n},)")
            bad = (lab < -1) | (lab >= len(self.values[attr]))
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise ValueError(f"{self.name}: row {row}: label {lab[row]} of {attr!r} is out of range "
                                 f"(it has {len(self.values[attr])} values)")
        unknown = sorted(set(self.split) - set(SPLITS))
        if unknown:
            raise ValueError(f"{self.name}: unknown split name(s) {unknown}; expected {SPLITS}")

    def select(self, attributes: list[str]) -> FashionTable:
        """The same rows with only ``attributes`` (checked by name)."""
        check_attributes(attributes, self.attributes)
        return FashionTable(self.images, {a: self.labels[a] for a in attributes},
                            {a: self.values[a] for a in attributes}, self.split, self.name)

    def counts(self) -> dict[str, dict[str, int]]:
        """``{attribute: {value: number of rows}}``: what a preparer reports."""
        return {a: {v: int((self.labels[a] == i).sum()) for i, v in enumerate(self.values[a])}
                for a in self.attributes}


def check_attributes(names, known) -> None:
    """Raise ValueError naming any attribute not in ``known``."""
    unknown = [a for a in names if a not in known]
    if unknown:
        raise ValueError(f"unknown attribute(s) {unknown}; known attributes: {list(known)}")


# ---------------------------------------------------------------------------- CSV on disk

def write_table(table: FashionTable, csv_path: str | Path) -> Path:
    """Write a path-based table as CSV (image paths made relative to the CSV's folder,
    with ``../`` when the images live elsewhere, e.g. a prepared table beside a dataset)."""
    csv_path = Path(csv_path)
    if not isinstance(table.images, list):
        raise ValueError("write_table needs image paths; save in-memory images first "
                         "(see data_scripts/make_synthfashion.py)")
    root = csv_path.parent.resolve()
    def write(raw):
        f = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        try:
            w = csv.writer(f)
            w.writerow(["image", "split", *table.attributes])
            for i, img in enumerate(table.images):
                rel = Path(os.path.relpath(Path(img).resolve(), root)).as_posix()  # "../" when outside root
                vals = [table.values[a][table.labels[a][i]] if table.labels[a][i] >= 0 else ""
                        for a in table.attributes]
                w.writerow([rel, table.split[i], *vals])
        finally:
            f.flush()
            f.detach()   # the temp file is closed by atomic_write_file
    atomic_write_file(csv_path, write)  # a temp file made without following links, then one rename
    return csv_path


def read_table(csv_path: str | Path, attributes: list[str] | None = None,
               check_files: bool = True, quiet: bool = False) -> FashionTable:
    """Read and validate a table CSV written by :func:`write_table` or a preparer.

    Value names are sorted so codes do not depend on row order. Raises FileNotFoundError
    for a missing CSV or image, ValueError for a missing column or bad split (naming the
    row, counting from 2 as a spreadsheet does), or text that is not UTF-8 (naming the
    line). A byte-order mark (Excel's "CSV UTF-8") is fine.

    An attribute with fewer than two values is removed, never scored (every candidate
    would be relevant to every query: AP 1 whatever the model does; the preparers remove
    such attributes too, and :func:`make_protocol` refuses candidates that all share one
    value). The table's ``removed_attributes`` says which and why, and a line per
    attribute goes to stderr (unless ``quiet``); an attribute asked for by name in
    ``attributes`` is refused instead (ValueError).
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"dataset table not found: {csv_path}")
    text = _read_utf8(csv_path)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    for col in ("image", "split"):
        if col not in header:
            raise ValueError(f"{csv_path}: missing column {col!r} (columns: {header})")
    attrs = [c for c in header if c not in ("image", "split")]
    if attributes is not None:
        missing = [a for a in attributes if a not in attrs]
        if missing:
            raise ValueError(f"{csv_path}: missing attribute column(s) {missing} (columns: {header})")
        attrs = list(attributes)
    if not attrs:
        raise ValueError(f"{csv_path}: no attribute columns besides image and split")
    rows = list(reader)
    if not rows:
        raise ValueError(f"{csv_path}: the table has no rows")
    images, split = [], []
    for r, row in enumerate(rows, start=2):
        if row["split"] not in SPLITS:
            raise ValueError(f"{csv_path}: row {r}: split {row['split']!r} is not one of {SPLITS}")
        path = csv_path.parent / row["image"]
        if check_files and not path.is_file():
            raise FileNotFoundError(f"{csv_path}: row {r}: image file not found: {path}")
        images.append(str(path))
        split.append(row["split"])
    values = {a: sorted({row[a] for row in rows if row[a]}) for a in attrs}
    removed = {}
    for a in attrs:
        why = unscorable(values[a])
        if why:
            removed[a] = why
    if attributes is not None and removed:
        raise ValueError(f"{csv_path}: " + "; ".join(f"attribute {a!r} cannot be evaluated: {w}"
                                                     for a, w in removed.items()))
    if len(removed) == len(attrs):
        raise ValueError(f"{csv_path}: no attribute can be evaluated: "
                         + "; ".join(f"{a!r}: {w}" for a, w in removed.items()))
    if not quiet:
        for a, why in removed.items():
            print(f"note: {csv_path}: attribute {a!r} removed, never scored: {why}", file=sys.stderr, flush=True)
    attrs = [a for a in attrs if a not in removed]
    index = {a: {v: i for i, v in enumerate(values[a])} for a in attrs}
    labels = {a: np.array([index[a][row[a]] if row[a] else -1 for row in rows]) for a in attrs}
    table = FashionTable(images, labels, {a: values[a] for a in attrs}, np.array(split, dtype=object),
                         name=str(csv_path))
    table.removed_attributes = removed
    return table


def unscorable(values: list[str]) -> str | None:
    """Why an attribute with these value names cannot be evaluated, or None when it can:
    retrieval by an attribute with one value scores AP 1 for every query and ranking."""
    if len(values) < 2:
        return (f"it has {len(values)} value{'' if len(values) == 1 else 's'}"
                f"{' (' + repr(values[0]) + ')' if values else ''}; retrieval needs at least two "
                "(with one, every ranking scores AP 1)")
    return None


def _read_utf8(path: Path) -> str:
    """The text of ``path`` as UTF-8 (a byte-order mark dropped); ValueError naming the
    file, line and byte when it is not UTF-8 (a CSV saved as latin-1 or Windows-1252)."""
    data = path.read_bytes()
    try:
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 with its byte-order mark ("Unicode text")
            return data.decode("utf-16")
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        start = err.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        line = data[:start].count(b"\n") + 1
        raise ValueError(f"{path}: line {line} is not UTF-8 text (byte 0x{data[start]:02x}); save the file "
                         "as UTF-8 (in Excel: Save As > 'CSV UTF-8')") from None


def images_stamp(paths) -> str:
    """A digest of the image files ``paths`` as they are now: each path with its size, mtime
    (ns) and inode, symlinks followed (a file missing counts as such). Metadata, not bytes:
    reading every byte of a 200k-image dataset at every start would take minutes; an image
    replaced, rewritten or repaired changes its mtime or inode, and a copy of the dataset
    elsewhere has other paths anyway."""
    h = hashlib.sha1()
    for p in paths:
        try:
            st = os.stat(p)  # follows symlinks: the file the table reads
            h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}\n".encode())
        except OSError:
            h.update(f"{p}|missing\n".encode())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------- pixels

def load_image(path: str, size: int) -> np.ndarray:
    """One image file as ``(size, size, 3)`` uint8 RGB, letterboxed onto a white square."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            # letterbox onto a white square, so that the garment is not distorted
            scale = size / max(im.size)
            w, h = max(1, round(im.size[0] * scale)), max(1, round(im.size[1] * scale))
            im = im.resize((w, h), Image.BILINEAR)
            canvas = Image.new("RGB", (size, size), (255, 255, 255))
            canvas.paste(im, ((size - w) // 2, (size - h) // 2))
            return np.asarray(canvas)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"unreadable image: {path} ({err})") from err


def image_cache_path(table: FashionTable, size: int) -> Path:
    """Where the uint8 ``(N, 3, size, size)`` array of a path-based ``table`` is cached:
    keyed by the paths, their sizes and mtimes, and ``size`` (shared by :func:`load_images`
    and the memory-mapped cache of :mod:`mclfir_lite.data.imagedata`)."""
    key = hashlib.sha1(str(size).encode())
    for p in table.images:
        st = Path(p).stat() if Path(p).exists() else None
        key.update(f"{p}|{st.st_size if st else -1}|{st.st_mtime_ns if st else -1}\n".encode())
    return cache_dir() / "images" / f"{key.hexdigest()[:20]}.npy"


def load_images(table: FashionTable, size: int, use_cache: bool = True,
                progress: bool = False, rebuild: bool = False) -> torch.Tensor:
    """All images of ``table`` as a uint8 tensor ``(N, 3, size, size)``.

    In-memory images are resized if needed; image files are read once and the result is
    cached under the cache directory (keyed by the paths, their sizes and mtimes, and
    ``size``). An unreadable image raises ValueError naming its path.

    The cache is checked when it is read (a ``.npy`` uint8 array of the expected shape,
    never a pickle); a damaged one (a partial copy, a foreign file) is read again from the
    images and replaced, with one line on stderr naming it. ``rebuild`` replaces it anyway.
    Before anything is allocated, the memory needed is compared with the memory available
    (:func:`check_memory`): too much raises ValueError with the figure.
    """
    if not isinstance(table.images, list):
        x = torch.from_numpy(np.ascontiguousarray(table.images)).permute(0, 3, 1, 2)
        if x.shape[-1] != size or x.shape[-2] != size:
            check_memory(len(x) * 3 * size * size * 5, f"resizing {len(x)} images to {size} px")
            x = torch.nn.functional.interpolate(x.float(), size=(size, size), mode="bilinear",
                                                antialias=True, align_corners=False)
            x = x.round().clamp(0, 255).to(torch.uint8)
        return x.contiguous()
    shape = (len(table.images), 3, size, size)
    check_memory(int(np.prod(shape)), f"loading {shape[0]} images at {size} px into memory",
                 "pass --lazy-images (open_images: read images when a batch needs them) or a smaller "
                 f"--image-size{_size_that_fits(shape[0])}")
    cache = image_cache_path(table, size)
    if use_cache and not rebuild and cache.is_file():
        arr = read_image_cache(cache, shape)
        if arr is not None:
            return torch.from_numpy(arr)
    from tqdm.auto import tqdm
    arr = np.empty(shape, dtype=np.uint8)
    for i, p in enumerate(tqdm(table.images, desc="reading images", disable=not progress)):
        arr[i] = load_image(p, size).transpose(2, 0, 1)
    if use_cache:
        atomic_write_file(cache, lambda f: np.save(f, arr))
    return torch.from_numpy(arr)


def cache_notice(path, why: str, action: str = "rebuilding it") -> None:
    """One line on stderr: a cache file ``path`` was damaged (``why``, its first line) and what is done about it."""
    why = (why.strip().splitlines() or ["unreadable"])[0].rstrip(" :.")
    why = why if len(why) <= 200 else why[:197] + "..."
    print(f"note: cache file {path} is damaged ({why}); {action}", file=sys.stderr, flush=True)


def image_cache_problem(path: str | Path, shape: tuple, mmap: bool = True) -> str | None:
    """Why the image cache ``path`` cannot be used for images of ``shape``, or None: it must
    be a complete ``.npy`` uint8 array (no pickle) of exactly that shape."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:  # truncated, a pickle, not an .npy file at all
        return f"{type(err).__name__}: {err}"
    if not isinstance(arr, np.ndarray):
        return f"it holds a {type(arr).__name__}, not one array"
    if arr.dtype != np.uint8 or tuple(arr.shape) != tuple(shape):
        return f"it holds {arr.dtype} {tuple(arr.shape)}, expected uint8 {tuple(shape)}"
    return None


def read_image_cache(path: str | Path, shape: tuple) -> np.ndarray | None:
    """The image cache ``path`` read into memory when it is sound (:func:`image_cache_problem`),
    else None after a line naming it (the caller rebuilds it)."""
    why = image_cache_problem(path, shape)
    if why is None:
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            why = f"{type(err).__name__}: {err}"
    cache_notice(path, why, "reading the images again")
    return None


def available_memory() -> int:
    """Bytes of memory available to this process without swapping: ``MemAvailable`` of
    /proc/meminfo (Linux), else free physical pages (``sysconf``), else 8 GiB."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def _gib(n: float) -> str:
    return f"{n / 2 ** 30:.1f} GiB" if n >= 2 ** 30 else f"{n / 2 ** 20:.0f} MiB"


def check_memory(nbytes: int, what: str, suggestion: str = "") -> None:
    """Raise ValueError saying how much memory ``what`` needs when it is more than 90% of
    :func:`available_memory` (checked before allocating, so the user reads the figure, not
    a MemoryError)."""
    avail = available_memory()
    if nbytes > 0.9 * avail:
        raise ValueError(f"{what} needs {_gib(nbytes)} of memory, more than the {_gib(avail)} available here"
                         + (f"; {suggestion}" if suggestion else ""))


def _size_that_fits(n: int) -> str:
    """`` (e.g. S px: X)``: the largest common image size whose ``n`` images fit in half the memory available."""
    avail = available_memory() / 2
    fits = [s for s in (512, 384, 256, 224, 192, 128, 96, 64, 48, 32) if n * 3 * s * s <= avail]
    return f" (e.g. {fits[0]}: {_gib(n * 3 * fits[0] ** 2)})" if fits else ""


# ---------------------------------------------------------------------------- protocol

@dataclass
class AttributeSplit:
    """Row indices for one attribute: training rows, and disjoint query / candidate rows."""

    train: np.ndarray
    query: np.ndarray
    candidate: np.ndarray


def make_protocol(table: FashionTable, query_fraction: float = QUERY_FRACTION, seed: int = 0,
                  max_queries: int | None = None, max_candidates: int | None = None,
                  min_train_per_value: int = 2, attributes=None) -> dict[str, AttributeSplit]:
    """The ASEN protocol: per attribute, train rows and a random disjoint query/candidate split
    of its annotated test rows. ``max_*`` cap evaluation cost (a random subset is kept).
    ``attributes``: only these (default: all of the table's; each attribute's split is the same
    either way), so that an attribute a run does not use cannot stop it.

    Raises ValueError when an attribute has no training doublet (no value with at least
    ``min_train_per_value`` training rows), no query / candidate rows, or candidates that all
    share one value (every ranking would score AP 1: a number that says nothing is refused,
    never averaged in; :func:`read_table` and the preparers already remove such attributes).
    """
    if not 0 < query_fraction < 1:
        raise ValueError(f"query_fraction must be in (0, 1), got {query_fraction}")
    if attributes is not None:
        check_attributes(list(attributes), table.attributes)
    out = {}
    for k, attr in enumerate(table.attributes):
        if attributes is not None and attr not in attributes:
            continue
        lab = table.labels[attr]
        train = np.flatnonzero((table.split == "train") & (lab >= 0))
        test = np.flatnonzero((table.split == "test") & (lab >= 0))
        rng = np.random.default_rng([seed, k])
        test = rng.permutation(test)
        nq = int(round(len(test) * query_fraction))
        query, cand = np.sort(test[:nq]), np.sort(test[nq:])
        if max_queries is not None and len(query) > max_queries:
            query = np.sort(rng.choice(query, max_queries, replace=False))
        if max_candidates is not None and len(cand) > max_candidates:
            cand = np.sort(rng.choice(cand, max_candidates, replace=False))
        counts = np.bincount(lab[train], minlength=len(table.values[attr]))
        if (counts >= min_train_per_value).sum() == 0:
            raise ValueError(f"attribute {attr!r} has no value with {min_train_per_value} training rows: "
                             "no doublet can be sampled")
        if len(query) == 0 or len(cand) == 0:
            raise ValueError(f"attribute {attr!r} has {len(query)} query and {len(cand)} candidate rows; "
                             "it needs test rows for both")
        cand_values = np.unique(lab[cand])
        if len(cand_values) < 2:
            raise ValueError(f"attribute {attr!r}: all {len(cand)} candidates have the value "
                             f"{table.values[attr][cand_values[0]]!r}, so every ranking scores AP 1 (or 0): it "
                             "cannot be evaluated; leave it out of the increments, or give it test rows with "
                             "other values")
        out[attr] = AttributeSplit(train, query, cand)
    return out


def validation_protocol(protocol: dict[str, AttributeSplit], fraction: float = 0.2, seed: int = 0,
                        query_fraction: float = QUERY_FRACTION) -> dict[str, AttributeSplit]:
    """A protocol for tuning: per attribute, ``fraction`` of the *training* rows are held out
    and split into validation queries and candidates; training uses the rest. The test
    queries and candidates are never looked at, so a value chosen on this protocol (a
    learning rate, EWC's lambda) is chosen fairly."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    out = {}
    for k, (attr, split) in enumerate(protocol.items()):
        rows = np.random.default_rng([seed, 991, k]).permutation(split.train)
        n_val = max(2, int(round(len(rows) * fraction)))
        val, train = rows[:n_val], np.sort(rows[n_val:])
        nq = max(1, int(round(n_val * query_fraction)))
        out[attr] = AttributeSplit(train, np.sort(val[:nq]), np.sort(val[nq:]))
    return out


# ---------------------------------------------------------------------------- sampling

@dataclass
class PairSampler:
    """Samples doublets (anchor, positive with the same value) and triplets (plus a
    negative with another value) from the training rows of one attribute.

    Values with fewer than two training rows cannot give a positive and are never anchors.
    """

    labels: np.ndarray
    indices: np.ndarray
    _groups: list[np.ndarray] = field(init=False, repr=False)

    def __post_init__(self):
        lab = self.labels[self.indices]
        groups = [self.indices[lab == v] for v in np.unique(lab)]
        self._groups = [g for g in groups if len(g) >= 2]
        if not self._groups:
            raise ValueError("no value has two training rows: cannot sample a doublet")
        self._anchors = np.concatenate(self._groups)
        self._group_of = np.concatenate([np.full(len(g), k) for k, g in enumerate(self._groups)])
        self._pos_in = np.concatenate([np.arange(len(g)) for g in self._groups])

    def doublets(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` (anchor, positive) row pairs: distinct rows sharing the attribute value."""
        pick = rng.integers(0, len(self._anchors), n)
        anchor = self._anchors[pick]
        positive = np.empty(n, dtype=np.int64)
        for k, g in enumerate(self._groups):
            m = self._group_of[pick] == k
            if m.any():
                shift = rng.integers(1, len(g), m.sum())  # never 0: never the anchor itself
                positive[m] = g[(self._pos_in[pick[m]] + shift) % len(g)]
        return anchor, positive

    def triplets(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``n`` (anchor, positive, negative) triplets; the negative has another value."""
        anchor, positive = self.doublets(n, rng)
        negative = self.indices[rng.integers(0, len(self.indices), n)]
        clash = self.labels[negative] == self.labels[anchor]
        for _ in range(100):  # rejection sampling; a value can't cover every row
            if not clash.any():
                break
            negative[clash] = self.indices[rng.integers(0, len(self.indices), clash.sum())]
            clash = self.labels[negative] == self.labels[anchor]
        if clash.any():
            raise ValueError("cannot sample a negative: every training row has the same value")
        return anchor, positive, negative


# ---------------------------------------------------------------------------- increments

PLANS: dict[str, list[list[str]]] = {
    # SynthFashion, one attribute per increment (sleeve length is hard at 48 px: see the README)
    "synth5": [["length"], ["sleeve_length"], ["silhouette"], ["pattern"], ["colour"]],
    # four increments: sleeve length added (a single-attribute model learns it only to chance + 0.26
    # in 300 steps at 48 px)
    "synth4": [["length"], ["silhouette"], ["sleeve_length"], ["colour"]],
    # three increments that a 32 px model learns in seconds (quick mode)
    "synth3-quick": [["length"], ["pattern"], ["colour"]],
    # grouped, as in DESIGN.md's example
    # the default lesson: three increments of attributes that a single-attribute model and a joint
    # multi-task model both learn at 48 px (README: why not pattern, sleeve length or neckline)
    "synth3": [["length"], ["silhouette"], ["colour"]],
    # grouped, as in DESIGN.md's example (harder: neckline and sleeve length are fine details at 48 px)
    "synth3-grouped": [["sleeve_length", "neckline"], ["length"], ["colour", "pattern"]],
    "synth6": [["sleeve_length"], ["neckline"], ["length"], ["silhouette"], ["colour"], ["pattern"]],
    # every attribute in five increments (issue 20), synth6's order with the two fine details grouped
    # first as in DESIGN.md's example; learnable at 48 px with the renderer's style "v2"
    # (benchmarks/bench_learnable.py)
    "synth6x5": [["sleeve_length", "neckline"], ["length"], ["silhouette"], ["colour"], ["pattern"]],
    # real datasets (see mclfir_lite.data.realdata for their attribute columns)
    "fpi3": [["subCategory"], ["baseColour"], ["usage", "gender"]],
    "fashionai4": [["skirt_length", "sleeve_length"], ["coat_length", "pant_length"],
                   ["collar_design", "lapel_design"], ["neckline_design", "neck_design"]],
    "darn3": [["clothes_category", "clothes_button", "clothes_color"],
              ["clothes_length", "clothes_pattern", "clothes_shape"],
              ["collar_shape", "sleeve_length", "sleeve_shape"]],
    "deepfashion3": [["texture", "fabric"], ["shape"], ["part", "style"]],
    "zappos4": [["Category"], ["Closure"], ["Gender"], ["HeelHeight"]],
}


def parse_increments(spec, attributes: list[str]) -> list[list[str]]:
    """An increment plan: a name from :data:`PLANS`, a string ``"a,b;c;d,e"``, or a list of
    lists of attribute names. Each attribute may appear once; no increment may be empty.
    """
    if isinstance(spec, str):
        if spec in PLANS:
            plan = PLANS[spec]
        else:
            plan = [[a.strip() for a in group.split(",") if a.strip()] for group in spec.split(";")]
    else:
        plan = [list(group) for group in spec]
    if not plan:
        raise ValueError("the increment plan is empty")
    seen = []
    for i, group in enumerate(plan):
        if not group:
            raise ValueError(f"increment {i} of {spec!r} is empty: every increment needs an attribute")
        check_attributes(group, attributes)
        for a in group:
            if a in seen:
                raise ValueError(f"attribute {a!r} appears in more than one increment of {spec!r}")
            seen.append(a)
    return plan
