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
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .checkpoint import atomic_write
from .settings import cache_dir

SPLITS = ("train", "test")


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
    def write(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["image", "split", *table.attributes])
            for i, img in enumerate(table.images):
                rel = Path(os.path.relpath(Path(img).resolve(), root)).as_posix()  # "../" when outside root
                vals = [table.values[a][table.labels[a][i]] if table.labels[a][i] >= 0 else ""
                        for a in table.attributes]
                w.writerow([rel, table.split[i], *vals])
    atomic_write(csv_path, write)  # a unique temp name, then one rename
    return csv_path


def read_table(csv_path: str | Path, attributes: list[str] | None = None,
               check_files: bool = True) -> FashionTable:
    """Read and validate a table CSV written by :func:`write_table` or a preparer.

    Value names are sorted so codes do not depend on row order. Raises FileNotFoundError
    for a missing CSV or image, ValueError for a missing column or bad split (naming the
    row, counting from 2 as a spreadsheet does).
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"dataset table not found: {csv_path}")
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
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
    labels = {a: np.array([values[a].index(row[a]) if row[a] else -1 for row in rows]) for a in attrs}
    return FashionTable(images, labels, values, np.array(split, dtype=object), name=str(csv_path))


# ---------------------------------------------------------------------------- pixels

def _load_one(path: str, size: int) -> np.ndarray:
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
    and the memory-mapped cache of :mod:`mclfir_lite.imagedata`)."""
    key = hashlib.sha1(str(size).encode())
    for p in table.images:
        st = Path(p).stat() if Path(p).exists() else None
        key.update(f"{p}|{st.st_size if st else -1}|{st.st_mtime_ns if st else -1}\n".encode())
    return cache_dir() / "images" / f"{key.hexdigest()[:20]}.npy"


def load_images(table: FashionTable, size: int, use_cache: bool = True,
                progress: bool = False) -> torch.Tensor:
    """All images of ``table`` as a uint8 tensor ``(N, 3, size, size)``.

    In-memory images are resized if needed; image files are read once and the result is
    cached under the cache directory (keyed by the paths, their sizes and mtimes, and
    ``size``). An unreadable image raises ValueError naming its path.
    """
    if not isinstance(table.images, list):
        x = torch.from_numpy(np.ascontiguousarray(table.images)).permute(0, 3, 1, 2)
        if x.shape[-1] != size or x.shape[-2] != size:
            x = torch.nn.functional.interpolate(x.float(), size=(size, size), mode="bilinear",
                                                antialias=True, align_corners=False)
            x = x.round().clamp(0, 255).to(torch.uint8)
        return x.contiguous()
    cache = image_cache_path(table, size)
    if use_cache and cache.is_file():
        return torch.from_numpy(np.load(cache))
    from tqdm.auto import tqdm
    arr = np.empty((len(table.images), 3, size, size), dtype=np.uint8)
    for i, p in enumerate(tqdm(table.images, desc="reading images", disable=not progress)):
        arr[i] = _load_one(p, size).transpose(2, 0, 1)
    if use_cache:
        def write(tmp):
            with open(tmp, "wb") as f:
                np.save(f, arr)
        atomic_write(cache, write)
    return torch.from_numpy(arr)


# ---------------------------------------------------------------------------- protocol

@dataclass
class AttributeSplit:
    """Row indices for one attribute: training rows, and disjoint query / candidate rows."""

    train: np.ndarray
    query: np.ndarray
    candidate: np.ndarray


def make_protocol(table: FashionTable, query_fraction: float = 0.25, seed: int = 0,
                  max_queries: int | None = None, max_candidates: int | None = None,
                  min_train_per_value: int = 2) -> dict[str, AttributeSplit]:
    """The ASEN protocol: per attribute, train rows and a random disjoint query/candidate split
    of its annotated test rows. ``max_*`` cap evaluation cost (a random subset is kept).

    Raises ValueError when an attribute has no training doublet (no value with at least
    ``min_train_per_value`` training rows) or no query / candidate rows.
    """
    if not 0 < query_fraction < 1:
        raise ValueError(f"query_fraction must be in (0, 1), got {query_fraction}")
    out = {}
    for k, attr in enumerate(table.attributes):
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
        out[attr] = AttributeSplit(train, query, cand)
    return out


def validation_protocol(protocol: dict[str, AttributeSplit], fraction: float = 0.2, seed: int = 0,
                        query_fraction: float = 0.25) -> dict[str, AttributeSplit]:
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
    # real datasets (see mclfir_lite.realdata for their attribute columns)
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
