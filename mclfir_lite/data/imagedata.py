"""Images in bounded memory: read lazily, decoded by DataLoader workers, optionally cached
on disk as one memory-mapped uint8 array.

:func:`mclfir_lite.data.table.load_images` puts every image of a table in RAM: fine for
SynthFashion and the small subsets, impossible for FashionAI at 224 px (~180k images,
~27 GB). This module gives the same images through one interface whatever their size:

* an :class:`ImageSet` is a ``torch.utils.data.Dataset`` of uint8 images ``(3, S, S)``;
  indexing it with an array of rows returns the stacked batch ``(B, 3, S, S)``, so it can
  stand where a uint8 tensor stood (the runner's ``images[rows]``, :func:`len`, ``.shape``);
* :class:`MemoryImages`: an in-memory tensor (SynthFashion, small subsets);
* :class:`FileImages`: image files, decoded and letterboxed one at a time when asked for
  (the same pixels as :func:`~mclfir_lite.data.table.load_images`);
* :class:`MappedImages`: the ``.npy`` cache written by :func:`build_cache`, opened with
  ``np.load(mmap_mode="r")``; pages already read are handed back to the kernel every
  ``release_bytes``, so the resident memory stays bounded too, not only the heap;
* :func:`open_images` picks one of them for a table;
* :func:`batch_loader`: a ``DataLoader`` that decodes whole batches of given rows (doublets,
  say) in worker processes, with an optional torchvision ``transforms.v2`` augmentation
  (:func:`train_transform`) and pinned memory when the batches go to a CUDA device.

Memory: a :class:`FileImages` pass holds one batch per worker plus the list of paths, so
its peak RSS does not grow with the number of images (tests/test_imagedata.py checks 2k vs
8k images, with and without workers; benchmarks/bench_datapath.py measures throughput and
peak RSS). With workers, one more thing is needed for that, done by :func:`batch_loader`:
torch remembers every shared-memory batch a worker sends in
``torch.multiprocessing.reductions.shared_cache`` (a weak reference per batch, swept only
when it holds 128 of them), and each dead entry keeps a small C++ object alive in the
heap. Those objects land in the holes left by the consumer's freed per-batch temporaries
(the int64 copy of a checksum, the float copy of a forward pass), so glibc cannot reuse
the holes and the heap grew by one temporary per batch, up to 128 of them (in about half
the runs, depending on timing): 2 GB instead of 0.55 GB for 8k images at 128 px, all of
it free memory (``malloc_trim`` gave it back). Sweeping the dead entries after every
batch keeps the heap flat.
"""
from __future__ import annotations

import contextlib
import mmap
import os
import resource
import secrets
import sys
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..files import NOFOLLOW, atomic_write_file, refuse_link
from .table import FashionTable, cache_notice, image_cache_path, image_cache_problem, load_image, load_images


class ImageSet(Dataset):
    """A dataset of uint8 images ``(3, size, size)``; ``images[rows]`` stacks a batch."""

    size: int

    def item(self, i: int) -> torch.Tensor:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self), 3, self.size, self.size)

    def __getitem__(self, index) -> torch.Tensor:
        if isinstance(index, (int, np.integer)) or (isinstance(index, torch.Tensor) and index.ndim == 0):
            i = int(index)
            if not -len(self) <= i < len(self):
                raise IndexError(f"image row {i} out of range for {len(self)} images")
            return self.item(i % len(self))
        rows = np.asarray(index.cpu() if isinstance(index, torch.Tensor) else index).reshape(-1)
        if len(rows) == 0:
            return torch.empty((0, 3, self.size, self.size), dtype=torch.uint8)
        return torch.stack([self[int(r)] for r in rows])


class MemoryImages(ImageSet):
    """Images already in memory, as a uint8 tensor ``(N, 3, S, S)``."""

    def __init__(self, images: torch.Tensor):
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3]:
            raise ValueError(f"MemoryImages needs a uint8 tensor (N, 3, S, S), got {images.dtype} {tuple(images.shape)}")
        self.images, self.size = images, images.shape[-1]

    def __len__(self):
        return len(self.images)

    def item(self, i):
        return self.images[i]

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)) or (isinstance(index, torch.Tensor) and index.ndim == 0):
            return self.images[int(index)]
        return self.images[torch.as_tensor(np.asarray(index.cpu() if isinstance(index, torch.Tensor) else index))]


class FileImages(ImageSet):
    """Image files decoded and letterboxed to ``size`` on demand (nothing is kept)."""

    def __init__(self, paths: list[str], size: int):
        self.paths, self.size = list(paths), int(size)

    def __len__(self):
        return len(self.paths)

    def item(self, i):
        return torch.from_numpy(load_image(self.paths[i], self.size).transpose(2, 0, 1).copy())


class MappedImages(ImageSet):
    """A ``.npy`` uint8 array ``(N, 3, S, S)`` memory-mapped read-only, opened in each process
    on first use (so DataLoader workers map it themselves).

    Reading a memory-mapped page makes it resident in this process; every ``release_bytes``
    read the mapping is told ``MADV_DONTNEED`` so those pages leave the resident set (the
    file stays in the kernel's page cache, shared and reclaimable).
    """

    def __init__(self, path: str | Path, release_bytes: int = 64 << 20):
        self.path = Path(path)
        header = np.load(self.path, mmap_mode="r")
        if header.dtype != np.uint8 or header.ndim != 4 or header.shape[1] != 3:
            raise ValueError(f"{self.path}: expected a uint8 array (N, 3, S, S), got {header.dtype} {header.shape}")
        self._n, self.size = header.shape[0], header.shape[-1]
        del header
        self.release_bytes = release_bytes
        self._array, self._read = None, 0

    def __len__(self):
        return self._n

    def __getstate__(self):  # a worker maps the file itself
        return {**self.__dict__, "_array": None, "_read": 0}

    def item(self, i):
        if self._array is None:
            self._array = np.load(self.path, mmap_mode="r")
        out = torch.from_numpy(np.array(self._array[i]))
        self._read += out.numel()
        if self._read >= self.release_bytes:
            self.release()
        return out

    def release(self) -> None:
        """Drop the pages read so far from this process's resident set."""
        self._read = 0
        mm = getattr(self._array, "_mmap", None)
        if mm is not None and hasattr(mmap, "MADV_DONTNEED"):
            mm.madvise(mmap.MADV_DONTNEED)


# ---------------------------------------------------------------------------- building and opening

def build_cache(table: FashionTable, size: int, path: str | Path | None = None, workers: int = 0,
                batch_size: int = 64, progress: bool = False, rebuild: bool = False) -> Path:
    """Decode every image of a path-based ``table`` once into a ``.npy`` uint8 array
    ``(N, 3, size, size)`` written through a memory map, a batch at a time (bounded memory).

    Default ``path``: the cache file :func:`~mclfir_lite.data.table.load_images` uses, so either
    function reuses the other's work. An existing sound file is reused, never rewritten;
    a damaged one (:func:`~mclfir_lite.data.table.image_cache_problem`: truncated, a pickle,
    another shape) is built again, with one line on stderr naming it; ``rebuild`` builds
    it again anyway.
    """
    if not isinstance(table.images, list):
        raise ValueError(f"{table.name}: build_cache needs image paths; in-memory images need no cache")
    path = Path(path) if path is not None else image_cache_path(table, size)
    if path.is_file() and not rebuild:
        why = image_cache_problem(path, (len(table), 3, size, size))
        if why is None:
            return path
        cache_notice(path, why)
    path.parent.mkdir(parents=True, exist_ok=True)
    refuse_link(path)   # a link planted at the cache's name is refused, never replaced or written through
    files = FileImages(table.images, size)
    from tqdm.auto import tqdm
    rows = [np.arange(s, min(s + batch_size, len(files))) for s in range(0, len(files), batch_size)]
    with _new_npy(path, (len(table), 3, size, size)) as out:
        start = 0
        for batch in tqdm(batch_loader(files, rows, workers=workers), total=len(rows), desc="caching images",
                          disable=not progress):
            out[start:start + len(batch)] = batch.numpy()
            start += len(batch)
            if start % (batch_size * 64) == 0:  # written pages: to disk, out of the resident set
                out.flush()
                out._mmap.madvise(mmap.MADV_DONTNEED) if hasattr(mmap, "MADV_DONTNEED") else None
    return path


@contextlib.contextmanager
def _new_npy(path: Path, shape: tuple):
    """A uint8 ``.npy`` memory map of ``shape`` to fill, written to a temp file beside ``path``
    (a name unique to the process and call, created with ``O_EXCL | O_NOFOLLOW`` and never
    reopened by name, so a planted link is never followed) and moved onto ``path`` in one
    step when the block ends without an error; removed otherwise."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o644)   # a planted name: FileExistsError
    try:
        with os.fdopen(fd, "r+b") as f:
            np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
                                                     "fortran_order": False, "shape": tuple(shape)})
            out = np.memmap(f, dtype=np.uint8, mode="r+", offset=f.tell(), shape=tuple(shape))
            yield out
            out.flush()
            del out
        refuse_link(path)   # planted while we wrote?
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def open_images(table: FashionTable, size: int, cache: bool = False, workers: int = 0,
                progress: bool = False, rebuild: bool = False) -> ImageSet:
    """The images of ``table`` at ``size`` px behind one interface: in memory for in-memory
    tables, else lazily from the files, or from a memory-mapped cache (built once, checked
    when opened, built again when damaged or when ``rebuild``) when ``cache`` is true."""
    if not isinstance(table.images, list):
        return MemoryImages(load_images(table, size))
    if cache:
        return MappedImages(build_cache(table, size, workers=workers, progress=progress, rebuild=rebuild))
    return FileImages(table.images, size)


# ---------------------------------------------------------------------------- loading batches

def train_transform(size: int, flip: bool = True, crop_scale: tuple[float, float] | None = (0.8, 1.0)):
    """The training augmentation, torchvision ``transforms.v2`` on uint8 tensors: a random
    horizontal flip and a random resized crop (``crop_scale`` of the area) back to ``size``."""
    from torchvision.transforms import v2
    steps = []
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    if crop_scale is not None:
        steps.append(v2.RandomResizedCrop(size, scale=crop_scale, antialias=True))
    return v2.Compose(steps) if steps else None


class _Transformed(Dataset):
    def __init__(self, images: ImageSet, transform):
        self.images, self.transform = images, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        x = self.images[i]
        return self.transform(x) if self.transform is not None else x


def _sweep_shared_cache() -> None:
    """Drop torch's weak references to shared-memory batches that are already freed (see
    the module docstring: left to torch, up to 128 of them pin holes in the heap)."""
    from torch.multiprocessing import reductions
    cache = getattr(reductions, "shared_cache", None)
    if cache is not None and hasattr(cache, "free_dead_references"):
        with cache.lock:
            cache.free_dead_references()


class _SweptLoader(DataLoader):
    """A DataLoader that, with workers, sweeps torch's cache of received batches after each one."""

    def __iter__(self):
        for batch in super().__iter__():
            if self.num_workers:
                _sweep_shared_cache()
            yield batch


def batch_loader(images: ImageSet, batches: Iterable, workers: int = 0, device: str | torch.device = "cpu",
                 transform=None, prefetch: int = 2) -> DataLoader:
    """A DataLoader yielding ``images[rows]`` (uint8 ``(B, 3, S, S)``, augmented by
    ``transform`` per image) for each array of ``rows`` in ``batches``, in order.

    ``workers`` processes decode batches ahead (``prefetch`` each); the batches are
    pinned when ``device`` is CUDA, so ``.to(device, non_blocking=True)`` overlaps the copy.
    With workers, the main process's heap stays flat however many batches pass (see the
    module docstring for why this needs a sweep of torch's shared-memory cache).
    """
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    return _SweptLoader(_Transformed(images, transform), batch_sampler=[np.asarray(b).tolist() for b in batches],
                        num_workers=workers, pin_memory=str(device).startswith("cuda"),
                        prefetch_factor=prefetch if workers else None, persistent_workers=False)


def scan(images: ImageSet, batch_size: int = 64, workers: int = 0, transform=None) -> dict:
    """Read every image once in order (a data-path pass, as encoding a gallery does).

    Returns the number of images, a checksum (the sum of all pixel values), the seconds
    until the first batch (worker start-up included) and the steady ``images_per_s`` after it.
    """
    import time
    rows = [np.arange(s, min(s + batch_size, len(images))) for s in range(0, len(images), batch_size)]
    n, total, t0, t_first, n_first = 0, 0, time.perf_counter(), None, 0
    for batch in batch_loader(images, rows, workers=workers, transform=transform):
        n += len(batch)
        total += int(batch.sum(dtype=torch.int64))
        if t_first is None:
            t_first, n_first = time.perf_counter(), n
    end = time.perf_counter()
    rate = (n - n_first) / (end - t_first) if t_first is not None and n > n_first else float("nan")
    return {"images": n, "checksum": total, "first_batch_s": (t_first or end) - t0, "images_per_s": rate}


def peak_rss_mb() -> dict:
    """Peak resident set size so far, in MiB, of this process and of its largest finished
    child (DataLoader workers, but also the ``ldconfig -p`` that importing torch forks, which
    reports this process's RSS at that moment).

    This process: Linux's ``VmHWM``, the peak of this program alone. ``getrusage``'s
    ``ru_maxrss`` (the fallback elsewhere) keeps the peak from before ``exec``, which is
    the parent's: started from a 1.4 GB pytest process, a 0.6 GB pass reported 1.4 GB.
    Children: ``getrusage`` (Linux reports KiB, macOS bytes)."""
    unit = 1 if sys.platform == "darwin" else 1024
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit / 2 ** 20
    try:
        with open("/proc/self/status") as f:
            own = next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError, IndexError):
        pass
    return {"self": own, "children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * unit / 2 ** 20}


def write_jpeg_table(folder: str | Path, n: int, size: int = 64, seed: int = 0, pool: int = 256,
                     quality: int = 90) -> Path:
    """A generated path-based table for data-path tests and benchmarks: ``n`` SynthFashion
    images rendered at ``size`` px and written as JPEG files under ``folder``, with a table
    CSV (``folder/table.csv``). Only ``pool`` distinct images are rendered (rendering is the
    slow part); file ``i`` is image ``i % pool``, each its own file, decoded on its own."""
    import io
    from PIL import Image
    from . import synth
    from .table import write_table
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    k = min(n, pool)
    pixels, labels = synth.render(k, size=size, seed=seed)
    encoded = []
    for img in pixels:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=quality)
        encoded.append(buf.getvalue())
    paths = []
    for i in range(n):
        p = folder / "images" / f"{i:07d}.jpg"
        atomic_write_file(p, lambda f, b=encoded[i % k]: f.write(b))  # never through a link planted at p
        paths.append(str(p))
    pick = np.arange(n) % k
    split = np.where(np.arange(n) % 4 == 3, "test", "train").astype(object)
    table = FashionTable(paths, {a: v[pick] for a, v in labels.items()},
                         {a: list(v) for a, v in synth.ATTRIBUTES.items()}, split, name=f"jpeg-{n}-{size}px")
    return write_table(table, folder / "table.csv")


def main(argv: list[str] | None = None) -> dict:
    """``python -m mclfir_lite.data.imagedata TABLE.csv SIZE [--workers N] [--cache] [--augment]``: one data-path
    pass over a table in this fresh process; prints (and returns) the images read, the
    images/s and the peak RSS, as JSON. Used by the memory test and the data-path benchmark."""
    import argparse
    import json
    from .table import read_table
    p = argparse.ArgumentParser(prog="python -m mclfir_lite.data.imagedata", description=main.__doc__.split("\n")[0])
    p.add_argument("table")
    p.add_argument("size", type=int)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--cache", action="store_true")
    p.add_argument("--augment", action="store_true", help="apply train_transform (flip, random resized crop)")
    p.add_argument("--batch-size", type=int, default=32)
    a = p.parse_args(argv)
    images = open_images(read_table(a.table), a.size, cache=a.cache, workers=a.workers)
    out = scan(images, batch_size=a.batch_size, workers=a.workers,
               transform=train_transform(a.size) if a.augment else None)
    out.update(peak_rss_mb())
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
