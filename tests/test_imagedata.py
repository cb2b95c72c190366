"""The lazy data path: the same pixels as load_images, batches of given rows, workers,
a memory-mapped cache, and peak memory that does not grow with the number of images."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from mclfir_lite.data import imagedata
from mclfir_lite.data.table import load_images, read_table
from mclfir_lite.data.datasets import synthfashion_table

pytestmark = pytest.mark.usefixtures("isolated_cache", "one_thread")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def jpeg_table(tmp_path_factory):
    return imagedata.write_jpeg_table(tmp_path_factory.mktemp("jpegs"), n=40, size=32, pool=16)


def test_file_and_mapped_images_equal_load_images(jpeg_table, monkeypatch):
    table = read_table(jpeg_table)
    eager = load_images(table, 24, use_cache=False)
    lazy = imagedata.open_images(table, 24)
    assert isinstance(lazy, imagedata.FileImages) and lazy.shape == tuple(eager.shape)
    rows = np.array([3, 0, 39, 3])
    assert torch.equal(lazy[rows], eager[torch.as_tensor(rows)])
    assert torch.equal(lazy[torch.tensor(5)], eager[5]) and torch.equal(lazy[-1], eager[-1])
    with pytest.raises(IndexError, match="row 40"):
        lazy[40]
    mapped = imagedata.open_images(table, 24, cache=True)
    assert isinstance(mapped, imagedata.MappedImages)
    mapped.release_bytes = 3 * 24 * 24 * 2  # release the pages every two images: still the same pixels
    assert torch.equal(mapped[np.arange(40)], eager)
    # the cache is load_images' own file: it is reused, not decoded again (a decoder that fails
    # would be met otherwise)
    from mclfir_lite.data import table as table_module

    def no_decoding(*args, **kwargs):
        raise AssertionError("load_images decoded an image again: its cache was not read")
    monkeypatch.setattr(table_module, "load_image", no_decoding)
    assert torch.equal(load_images(table, 24), eager)


def test_memory_images_share_the_interface():
    table = synthfashion_table(n=12, size=16, seed=0)
    images = imagedata.open_images(table, 16)
    assert isinstance(images, imagedata.MemoryImages) and len(images) == 12
    assert torch.equal(images[[1, 2]], load_images(table, 16)[[1, 2]])
    with pytest.raises(ValueError, match="uint8 tensor"):
        imagedata.MemoryImages(torch.zeros(2, 3, 4, 4))


@pytest.mark.parametrize("workers", [0, 2])
def test_batch_loader_gives_the_rows_asked_for_in_order(jpeg_table, workers):
    images = imagedata.open_images(read_table(jpeg_table), 16)
    batches = [np.array([4, 1]), np.array([7, 7, 9]), np.array([0])]
    got = list(imagedata.batch_loader(images, batches, workers=workers))
    assert [tuple(b.shape) for b in got] == [(2, 3, 16, 16), (3, 3, 16, 16), (1, 3, 16, 16)]
    for b, rows in zip(got, batches):
        assert torch.equal(b, images[rows])
    out = imagedata.scan(images, batch_size=7, workers=workers)
    assert (out["images"], out["checksum"]) == (40, int(images[np.arange(40)].sum(dtype=torch.int64)))
    assert out["images_per_s"] > 0


def test_train_transform_augments_uint8_batches(jpeg_table):
    images = imagedata.open_images(read_table(jpeg_table), 16)
    torch.manual_seed(0)
    t = imagedata.train_transform(16)
    out = next(iter(imagedata.batch_loader(images, [np.arange(8)], transform=t)))
    assert out.dtype == torch.uint8 and out.shape == (8, 3, 16, 16)
    assert not torch.equal(out, images[np.arange(8)])  # something was flipped or cropped
    assert imagedata.train_transform(16, flip=False, crop_scale=None) is None


def test_errors_name_the_culprit(tmp_path):
    with pytest.raises(ValueError, match="needs image paths"):
        imagedata.build_cache(synthfashion_table(n=6, size=16), 16)
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="bad.npy"):
        imagedata.MappedImages(bad)
    table = read_table(imagedata.write_jpeg_table(tmp_path / "t", n=4, size=16))
    Path(table.images[2]).write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="0000002.jpg"):
        imagedata.FileImages(table.images, 16)[2]
    with pytest.raises(ValueError, match="workers"):
        imagedata.batch_loader(imagedata.FileImages(table.images, 16), [[0]], workers=-1)


def _peak(csv: Path, size: int, workers: int, cache: bool) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "mclfir_lite.data.imagedata", str(csv), str(size), "--workers", str(workers)]
    res = subprocess.run(cmd + (["--cache"] if cache else []), capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_peak_memory_does_not_grow_with_the_number_of_images(tmp_path):
    """2k vs 8k images (64 px JPEGs read at 128 px): the lazy pass, with and without workers,
    and through the memory-mapped cache, stays within 20%, in the main process and in the
    largest finished child (a worker, or the ``ldconfig -p`` that importing torch forks, whose
    peak is this process's RSS at that moment, ~0.45 GB: it hides a smaller worker's).
    (Importing torch alone takes most of the peak, ~0.5 GB here; the check below makes sure
    an eager load would still fail.) With workers the main process used to grow to 2 GB at
    8k images in about half the runs (see imagedata's docstring and the next test for why)."""
    small = imagedata.write_jpeg_table(tmp_path / "2k", n=2000, size=64)
    large = imagedata.write_jpeg_table(tmp_path / "8k", n=8000, size=64)
    for workers, cache in ((0, False), (2, False), (0, True)):
        a, b = _peak(small, 128, workers, cache), _peak(large, 128, workers, cache)
        assert (a["images"], b["images"]) == (2000, 8000)
        for key in ("self", "children"):
            assert b[key] <= 1.2 * a[key], (key, workers, cache, a, b)
    # an eager load holds every image: 6000 more x 3 x 128 x 128 bytes = 281 MiB more, over 20%
    assert 6000 * 3 * 128 * 128 / 2 ** 20 > 0.2 * a["self"], a


def test_batches_from_workers_leave_no_trace_in_torch_shared_cache(jpeg_table):
    """The cause of that growth, checked directly (it showed in most runs, not all): torch
    keeps a weak reference to each shared-memory batch received from a worker, and on its
    own sweeps the dead ones only at 128; batch_loader sweeps them after every batch."""
    from torch.multiprocessing.reductions import shared_cache
    with shared_cache.lock:
        shared_cache.free_dead_references()  # start below torch's own sweep at 128
    before = len(shared_cache)
    images = imagedata.open_images(read_table(jpeg_table), 16)
    for _ in imagedata.batch_loader(images, [[i] for i in range(40)], workers=2):
        pass
    assert len(shared_cache) <= before + 4, f"{len(shared_cache) - before} dead batches still referenced"


def test_demo_trains_on_lazy_images(tmp_path):
    from mclfir_lite.cli.main import main
    csv = imagedata.write_jpeg_table(tmp_path / "jpegs", n=160, size=32, pool=64)
    out = tmp_path / "run"
    assert main(["demo", "--quick", "--dataset", "table", "--data-dir", str(csv), "--lazy-images",
                 "--increments", "length;colour", "--strategies", "finetune", "--steps", "3", "--image-size", "32",
                 "--out", str(out), "--no-progress"]) == 0
    res = json.loads((out / "results.json").read_text())["strategies"]["finetune"]
    assert res["finished_increments"] == 2 and (out / "neighbours.png").is_file()


def test_peak_rss_is_the_programs_own_not_its_parents():
    """A child started from a process that once held 1.5 GiB reports its own peak: getrusage's
    ru_maxrss keeps the parent's peak across exec (the memory test above once read 1.4 GB
    for a 0.6 GB pass, the size of the pytest process that started it)."""
    parent = textwrap.dedent("""
        import json, os, subprocess, sys
        import numpy as np
        held = np.ones(3 * 2 ** 26); del held          # 1.5 GiB touched, then freed
        code = "import json; from mclfir_lite.data.imagedata import peak_rss_mb; print(json.dumps(peak_rss_mb()))"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        print(out.stdout.strip().splitlines()[-1])
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    child = json.loads(res.stdout.strip().splitlines()[-1])
    assert child["self"] < 1200, child   # importing torch: ~0.4 GB; the parent's 1.5 GiB is not there
