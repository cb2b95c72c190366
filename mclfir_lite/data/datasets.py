"""Named datasets, each turned into a :class:`~mclfir_lite.data.table.FashionTable`.

``synthfashion`` is rendered in memory (offline, seconds). Real datasets are prepared
from their own on-disk layout by the scripts in ``data_scripts/`` into a table CSV,
which :func:`load_dataset` reads.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .table import FashionTable, images_stamp, read_table
from .realdata import REAL_DATASETS

DATASETS = ("synthfashion", *REAL_DATASETS)
# The increment plan (a name in data.PLANS) the demo uses for a dataset when --increments is not given.
DEFAULT_PLAN = {"fashion-product-images": "fpi3", "fashionai": "fashionai4", "darn": "darn3",
                "deepfashion": "deepfashion3", "zappos50k": "zappos4"}


def synthfashion_table(n: int = 6000, size: int = 64, seed: int = 0, test_fraction: float = 1 / 3,
                       increments=None, pools: str = "per_increment", domain_shift: bool = False,
                       rebuild: bool = False, style: str = "v1") -> FashionTable:
    """SynthFashion rendered in memory: ``n`` images, the last ``test_fraction`` of them test rows
    (rows are i.i.d., so a contiguous split is a random one).

    With an increment plan (``increments``) and ``pools="per_increment"`` (the default, as in
    the paper's FashionAI -> DeepFashion -> DARN sequence), **every increment brings its own
    images**: the rows are dealt at random into one pool per increment, and an attribute is
    labelled only on its increment's pool (-1 elsewhere: not annotated). ``pools="shared"``
    labels every image with every attribute, so later increments relabel the same images
    (the easy case for distillation). ``domain_shift=True`` also renders each pool in its own
    visual domain (:data:`mclfir_lite.data.synth.DOMAINS`: backdrop, light, camera noise).
    ``rebuild`` renders the images again even when they are cached. ``style``: the renderer's
    calibration (:data:`mclfir_lite.data.synth.STYLES`; "v1", the default, is what every
    result so far was made with; "v2" makes all six attributes learnable).
    """
    from . import synth
    synth.check_style(style)
    if pools not in ("per_increment", "shared"):
        raise ValueError(f"pools must be 'per_increment' or 'shared', got {pools!r}")
    plan = None
    if increments is not None:
        from .table import parse_increments
        plan = parse_increments(increments, list(synth.ATTRIBUTES))
    pool = None
    if plan is not None and (pools == "per_increment" or domain_shift):
        pool = np.random.default_rng([seed, 7001]).permutation(n) % len(plan)
    images, labels = _rendered(n, size, seed, pool if domain_shift else None, rebuild=rebuild, style=style)
    if plan is not None and pools == "per_increment":
        for k, group in enumerate(plan):
            for a in group:
                labels[a] = np.where(pool == k, labels[a], -1)
    split = np.where(np.arange(n) < n - int(round(n * test_fraction)), "train", "test").astype(object)
    values = {a: list(v) for a, v in synth.ATTRIBUTES.items()}
    name = f"synthfashion-{n}-{size}px-seed{seed}"
    if plan is not None:
        name += f"-{pools}{len(plan)}" + ("-domains" if domain_shift else "")
    if style != "v1":
        name += f"-style{style}"
    return FashionTable(images, labels, values, split, name=name)


def _rendered(n: int, size: int, seed: int, domains, rebuild: bool = False,
              style: str = "v1") -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """:func:`mclfir_lite.data.synth.render`, kept on disk under the cache directory so that each
    notebook does not render the same images again (keyed by everything that decides them,
    and the renderer's source, so a change to the renderer renders anew). A cached file is
    checked (uint8 images of the right shape, labels in range) and rendered again when it
    is damaged, with one line naming it; ``rebuild`` renders again anyway."""
    import hashlib
    import inspect
    from . import synth
    from ..settings import cache_dir
    key = hashlib.sha1(f"{n}|{size}|{seed}".encode() + (b"" if style == "v1" else f"|{style}".encode()))
    key.update(b"" if domains is None else np.asarray(domains, dtype=np.int64).tobytes())
    key.update(inspect.getsource(synth).encode())
    path = cache_dir() / "synthfashion" / f"{key.hexdigest()[:20]}.npz"
    if path.is_file() and not rebuild:
        why = None
        try:
            with np.load(path, allow_pickle=False) as z:
                images, labels = z["images"], {a: z[f"label_{a}"] for a in synth.ATTRIBUTES}
        except Exception as err:  # truncated (BadZipFile, EOFError), a pickle, a missing array: render again
            why = f"{type(err).__name__}: {err}"
        else:
            why = _render_problem(images, labels, n, size)
            if why is None:
                return images, labels
        from .table import cache_notice
        cache_notice(path, why, "rendering the images again")
    from .table import check_memory
    check_memory(n * size * size * 3 * 2, f"rendering {n} SynthFashion images at {size} px",
                 "choose a smaller --image-size or --n-images")
    images, labels = synth.render(n, size=size, seed=seed, domains=domains, style=style)
    from ..files import atomic_write_file  # a temp file made without following links, then one rename
    atomic_write_file(path, lambda f: np.savez(f, images=images, **{f"label_{a}": v for a, v in labels.items()}))
    return images, labels


def _render_problem(images, labels: dict, n: int, size: int) -> str | None:
    """Why rendered ``images`` and ``labels`` read from the cache are not ``n`` images at
    ``size`` px with in-range labels, or None."""
    from . import synth
    if images.dtype != np.uint8 or images.shape != (n, size, size, 3):
        return f"its images are {images.dtype} {images.shape}, expected uint8 {(n, size, size, 3)}"
    for a, lab in labels.items():
        if lab.shape != (n,) or lab.dtype.kind not in "iu" or \
                (len(lab) and (lab.min() < 0 or lab.max() >= len(synth.ATTRIBUTES[a]))):
            return f"its labels of {a!r} are not {n} values in range"
    return None


def load_dataset(name: str, data_dir: str | Path | None = None, *, n: int = 6000, size: int = 64,
                 seed: int = 0, increments=None, pools: str = "per_increment",
                 domain_shift: bool = False, strict: bool = False, rebuild: bool = False,
                 progress: bool = True, style: str = "v1") -> FashionTable:
    """A dataset by name: ``synthfashion`` (rendered), ``table`` (a table CSV at ``data_dir``), or
    a real dataset of :data:`~mclfir_lite.data.realdata.REAL_DATASETS` (its unpacked folder at
    ``data_dir``, prepared once into the cache by :func:`mclfir_lite.data.realdata.load_prepared`;
    ``strict``: stop on any problem the preparer reports; ``rebuild``: render or prepare it
    again (a table CSV is always read as it is: its image cache is rebuilt by
    :func:`~mclfir_lite.data.table.load_images`); ``progress``: the preparer's progress bar;
    ``style``: SynthFashion's renderer calibration, refused for any other dataset)."""
    if name == "synthfashion":
        return synthfashion_table(n=n, size=size, seed=seed, increments=increments, pools=pools,
                                  domain_shift=domain_shift, rebuild=rebuild, style=style)
    if style != "v1":
        raise ValueError(f"style={style!r} applies to synthfashion only, not to dataset {name!r}")
    if name == "table":
        if data_dir is None:
            raise ValueError("dataset 'table' needs --data-dir pointing at a table CSV")
        return read_table(data_dir)
    if name in REAL_DATASETS:
        from .realdata import load_prepared
        return load_prepared(name, data_dir, seed=seed, strict=strict, rebuild=rebuild, progress=progress)
    raise ValueError(f"unknown dataset {name!r}; choose from {list(DATASETS) + ['table']}")


def per_increment_pools(table: FashionTable, plan, seed: int = 0) -> FashionTable:
    """The table with **each increment bringing its own images**, for a dataset whose rows carry
    every attribute (real catalogues): the rows are dealt into one pool per increment and an
    attribute keeps its labels on its increment's pool only (-1 elsewhere: not annotated), as
    :func:`synthfashion_table` does with ``pools="per_increment"``.

    The deal is stratified: within each split the rows are put in order of their values (the
    plan's attributes, the first one first; ties in a seeded random order) and dealt round
    robin, so that every pool gets its share of every value and every value keeps test rows
    (queries) in its increment's pool wherever it has at least one per increment overall.
    """
    from .table import parse_increments
    plan = parse_increments(plan, table.attributes)
    k = len(plan)
    rng = np.random.default_rng([seed, 7003])
    pool = np.zeros(len(table), dtype=np.int64)
    attrs = [a for g in plan for a in g]
    for part in ("train", "test"):
        rows = rng.permutation(np.flatnonzero(table.split == part))
        rows = rows[np.lexsort([table.labels[a][rows] for a in reversed(attrs)])]   # stable: random within ties
        pool[rows] = (np.arange(len(rows)) + int(rng.integers(k))) % k
    labels = {a: v.copy() for a, v in table.labels.items()}
    for i, group in enumerate(plan):
        for a in group:
            labels[a] = np.where(pool == i, labels[a], -1)
    out = FashionTable(table.images, labels, table.values, table.split, name=f"{table.name}-per_increment{k}")
    for extra in ("removed_attributes", "root"):
        if hasattr(table, extra):
            setattr(out, extra, getattr(table, extra))
    return out


def fingerprint(table: FashionTable) -> str:
    """A short description that changes when the rows, labels or split change, and, for a
    table of image files, when one of its images changes (:func:`images_stamp`: size, mtime
    and inode, through symlinks). Other files beside the data do not change it."""
    import hashlib
    h = hashlib.sha1(table.name.encode())
    for a in table.attributes:
        h.update(a.encode())
        h.update(table.labels[a].tobytes())
    h.update("".join(table.split).encode())
    if isinstance(table.images, list):
        h.update(images_stamp(table.images).encode())
    return f"{table.name}:{len(table)}:{h.hexdigest()[:12]}"
