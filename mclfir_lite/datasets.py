"""Named datasets, each turned into a :class:`~mclfir_lite.data.FashionTable`.

``synthfashion`` is rendered in memory (offline, seconds). Real datasets are prepared
from their own on-disk layout by the scripts in ``data_scripts/`` into a table CSV,
which :func:`load_dataset` reads.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .data import FashionTable, read_table
from .realdata import REAL_DATASETS

DATASETS = ("synthfashion", *REAL_DATASETS)
# The increment plan (a name in data.PLANS) the demo uses for a dataset when --increments is not given.
DEFAULT_PLAN = {"fashion-product-images": "fpi3", "fashionai": "fashionai4", "darn": "darn3",
                "deepfashion": "deepfashion3", "zappos50k": "zappos4"}


def synthfashion_table(n: int = 6000, size: int = 64, seed: int = 0, test_fraction: float = 1 / 3) -> FashionTable:
    """SynthFashion rendered in memory: ``n`` images, the last ``test_fraction`` of them test rows
    (rows are i.i.d., so a contiguous split is a random one)."""
    from . import synth
    images, labels = synth.render(n, size=size, seed=seed)
    split = np.where(np.arange(n) < n - int(round(n * test_fraction)), "train", "test").astype(object)
    values = {a: list(v) for a, v in synth.ATTRIBUTES.items()}
    return FashionTable(images, labels, values, split, name=f"synthfashion-{n}-{size}px-seed{seed}")


def load_dataset(name: str, data_dir: str | Path | None = None, *, n: int = 6000, size: int = 64,
                 seed: int = 0, strict: bool = False, rebuild: bool = False) -> FashionTable:
    """A dataset by name: ``synthfashion`` (rendered), ``table`` (a table CSV at ``data_dir``), or
    a real dataset of :data:`~mclfir_lite.realdata.REAL_DATASETS` (its unpacked folder at
    ``data_dir``, prepared once into the cache by :func:`mclfir_lite.realdata.load_prepared`;
    ``strict``: stop on any problem the preparer reports; ``rebuild``: prepare it again)."""
    if name == "synthfashion":
        return synthfashion_table(n=n, size=size, seed=seed)
    if name == "table":
        if data_dir is None:
            raise ValueError("dataset 'table' needs --data-dir pointing at a table CSV")
        return read_table(data_dir)
    if name in REAL_DATASETS:
        from .realdata import load_prepared
        return load_prepared(name, data_dir, seed=seed, strict=strict, rebuild=rebuild)
    raise ValueError(f"unknown dataset {name!r}; choose from {list(DATASETS) + ['table']}")


def fingerprint(table: FashionTable) -> str:
    """A short description that changes when the rows, labels or split change."""
    import hashlib
    h = hashlib.sha1(table.name.encode())
    for a in table.attributes:
        h.update(a.encode())
        h.update(table.labels[a].tobytes())
    h.update("".join(table.split).encode())
    return f"{table.name}:{len(table)}:{h.hexdigest()[:12]}"
