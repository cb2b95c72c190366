"""datapath: the lazy image data path (``mclfir_lite.data.imagedata``): images/s and peak memory.

* Throughput: a generated table (SynthFashion rendered at ``jpeg_size`` px, written as
  JPEG files; see ``imagedata.write_jpeg_table``) is read once in order, decoded,
  letterboxed to ``size`` px and batched, with 0, 1 and 2 DataLoader workers, then once
  more with the training augmentation (transforms v2 flip + random resized crop). Each
  pass runs in a fresh process (``python -m mclfir_lite.data.imagedata``), so the OS file cache
  is warm for all but the first and no pass inherits another's memory.
* Peak RSS: the same pass on tables of growing size (the largest is the issue's
  "100k images at 224 px" when ``rss_n`` says so; the default stops at 20k to fit a few
  minutes, and the growth per image is reported so the 100k figure can be extrapolated).
  The lazy path holds one batch per worker, so the peak should be flat; an eager
  ``load_images`` would hold ``N x 3 x S x S`` bytes (shown for contrast).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as C

SIZES = {
    "default": {"n_images": 2000, "jpeg_size": 224, "size": 224, "workers": [0, 1, 2],
                "rss_n": [2000, 20000], "rss_workers": 2},
    "quick": {"n_images": 256, "jpeg_size": 64, "size": 64, "workers": [0, 1, 2],
              "rss_n": [256, 1024], "rss_workers": 1},
}


def _pass(csv: Path, size: int, workers: int, augment: bool = False) -> dict:
    env = {**os.environ, "PYTHONPATH": str(C.REPO)}
    cmd = [sys.executable, "-m", "mclfir_lite.data.imagedata", str(csv), str(size), "--workers", str(workers)]
    if augment:
        cmd.append("--augment")
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if res.returncode != 0:
        raise RuntimeError(f"data-path pass failed: {' '.join(cmd)}\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# The strategies whose runs make the result (benchmarks/_common.code_scope): a change to another one's code leaves it fresh.
CODE_SCOPE = ()   # the image path only: shared code


def run(quick: bool, seed: int, device: str = "cpu", **_) -> dict:
    from mclfir_lite.data.imagedata import write_jpeg_table
    p = SIZES["quick" if quick else "default"]
    out = {"params": p, "device": "cpu (decoding runs on the CPU whatever the training device)",
           "throughput": [], "rss": []}
    with tempfile.TemporaryDirectory(prefix="mclfir-datapath-") as tmp:
        C.log(f"datapath: writing {p['n_images']} JPEGs at {p['jpeg_size']} px")
        csv = write_jpeg_table(Path(tmp) / "speed", p["n_images"], size=p["jpeg_size"], seed=seed)
        _pass(csv, p["size"], 0)  # warm the OS file cache
        for w in p["workers"]:
            C.log(f"datapath: {w} worker(s)")
            r = _pass(csv, p["size"], w)
            out["throughput"].append({"workers": w, "augment": False, "images_per_s": r["images_per_s"],
                                      "first_batch_s": r["first_batch_s"]})
        r = _pass(csv, p["size"], max(p["workers"]), augment=True)
        out["throughput"].append({"workers": max(p["workers"]), "augment": True, "images_per_s": r["images_per_s"],
                                  "first_batch_s": r["first_batch_s"]})
        for n in p["rss_n"]:
            C.log(f"datapath: peak RSS, {n} images at {p['size']} px, {p['rss_workers']} worker(s)")
            t0 = time.perf_counter()
            csv_n = write_jpeg_table(Path(tmp) / f"rss{n}", n, size=p["jpeg_size"], seed=seed)
            r = _pass(csv_n, p["size"], p["rss_workers"])
            out["rss"].append({"n_images": n, "peak_rss_mib": r["self"], "worker_peak_rss_mib": r["children"],
                               "eager_pixels_mib": n * 3 * p["size"] ** 2 / 2 ** 20,
                               "seconds": time.perf_counter() - t0})
    a, b = out["rss"][0], out["rss"][-1]
    per_image = max(0.0, (b["peak_rss_mib"] - a["peak_rss_mib"]) / (b["n_images"] - a["n_images"]))
    out["rss_growth_mib_per_1k_images"] = 1000 * per_image
    out["rss_extrapolated_100k_mib"] = b["peak_rss_mib"] + per_image * (100_000 - b["n_images"])
    return out


def render(r: dict) -> str:
    p = r["params"]
    rows = [[x["workers"], "yes" if x["augment"] else "no", x["images_per_s"], x["first_batch_s"]]
            for x in r["throughput"]]
    text = [f"Decode + letterbox to {p['size']} px + batch of 32, {p['n_images']} JPEGs "
            f"({p['jpeg_size']} px), one fresh process per pass:", "",
            C.table(["workers", "augment (v2)", "images/s after the first batch", "first batch (s)"], rows), ""]
    rows = [[x["n_images"], x["peak_rss_mib"], x["worker_peak_rss_mib"], x["eager_pixels_mib"]] for x in r["rss"]]
    text += ["Peak RSS of one pass (MiB; importing torch alone is most of it):", "",
             C.table(["images", "main process", "largest child (a worker, or ldconfig forked at torch import)",
                      "eager load would add"], rows), "",
             f"Growth: {r['rss_growth_mib_per_1k_images']:.2f} MiB per 1k images; extrapolated to 100k images: "
             f"{r['rss_extrapolated_100k_mib']:.0f} MiB (target < 4096)."]
    return "\n".join(text)


if __name__ == "__main__":
    C.main(sys.modules[__name__])
