"""throughput: encoder feature extraction (images/s), the feature cache, and notebook wall times.

* Feature extraction, eval mode, no gradients, batches of 128 random uint8 images at the
  encoder's input size: ``smallcnn`` at 64 px (random weights: speed does not depend on
  them), and the frozen ImageNet ``efficientnet_lite0`` at 224 and 128 px.
* The feature cache (``mclfir_lite.retrieval.features.encode_dataset``): a first call encodes and
  writes the cache (cold), a second call reads it (warm); both in a temporary cache
  folder. Without ``features.py`` only raw extraction is measured, and that is said.
* Notebook wall times: every ``notebooks/*.ipynb`` executed by ``jupyter nbconvert
  --execute`` into a temporary copy (never in place), in quick mode (``MCLFIR_QUICK=1``)
  and in default mode, each mode with its own empty ``MCLFIR_CACHE`` (a learner's first
  run: nothing cached; notebooks run in order and share that cache, as a learner's do).
  ``run_all.py --notebooks`` chooses the modes; ``--quick`` runs none (a smoke run).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as C

SIZES = {"default": {"smallcnn": 2048, "efficientnet_lite0@224": 256, "efficientnet_lite0@128": 512},
         "quick": {"smallcnn": 256, "efficientnet_lite0@224": 16, "efficientnet_lite0@128": 32}}
BATCH = 128
NOTEBOOK_TIMEOUT = {"quick": 900, "default": 3600}


def _images(n: int, size: int, seed: int):
    import torch
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)


def _encoder(name: str, device: str):
    from mclfir_lite.core.encoders import build_encoder
    if name == "smallcnn":
        return build_encoder("smallcnn", trainable=False).to(device), 64
    size = int(name.split("@")[1])
    return build_encoder("efficientnet_lite0", trainable=False, input_size=size).to(device), size


def _raw(encoder, images, device: str) -> float:
    import torch
    with torch.no_grad():
        encoder(images[:8].to(device))  # warm-up
        t0 = time.perf_counter()
        for s in range(0, len(images), BATCH):
            encoder(images[s:s + BATCH].to(device))
        if device != "cpu":
            torch.cuda.synchronize()
    return time.perf_counter() - t0


def extraction(quick: bool, seed: int, device: str) -> tuple[list[dict], str | None]:
    try:
        from mclfir_lite.retrieval import features
        encode_dataset = features.encode_dataset
    except (ImportError, AttributeError) as err:
        encode_dataset, reason = None, f"mclfir_lite.retrieval.features.encode_dataset is not available ({err})"
    else:
        reason = None
    rows = []
    for name, n in SIZES["quick" if quick else "default"].items():
        try:
            enc, size = _encoder(name, device)
        except Exception as err:  # e.g. the EfficientNet wheel is missing: say so, go on
            rows.append({"encoder": name, "error": f"{type(err).__name__}: {err}"})
            continue
        imgs = _images(n, size, seed)
        C.log(f"throughput: {name}, {n} images at {size} px")
        raw = _raw(enc, imgs, device)
        row = {"encoder": name, "description": getattr(enc, "description", ""), "image_size": size, "images": n,
               "raw_seconds": round(raw, 3), "raw_images_per_second": n / raw}
        if encode_dataset is not None:
            old = os.environ.get("MCLFIR_CACHE")
            with tempfile.TemporaryDirectory(prefix="mclfir-bench-features-") as tmp:
                os.environ["MCLFIR_CACHE"] = tmp  # settings.cache_dir() reads it at every call
                try:
                    t0 = time.perf_counter()
                    a = encode_dataset(enc, imgs, ["benchmark"], batch_size=BATCH, use_cache=True, progress=False)
                    cold = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    b = encode_dataset(enc, imgs, ["benchmark"], batch_size=BATCH, use_cache=True, progress=False)
                    warm = time.perf_counter() - t0
                    cache_mib = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file()) / 2 ** 20
                finally:
                    if old is None:
                        os.environ.pop("MCLFIR_CACHE", None)
                    else:
                        os.environ["MCLFIR_CACHE"] = old
            row.update({"cache_cold_seconds": round(cold, 3), "cache_cold_images_per_second": n / cold,
                        "cache_warm_seconds": round(warm, 3), "cache_warm_images_per_second": n / warm,
                        "warm_speedup_vs_raw": raw / warm, "cache_mib": round(cache_mib, 2),
                        "feature_shape": list(a.shape[1:]), "cache_identical": bool((a == b).all())})
        rows.append(row)
    return rows, reason


def _last_lines(text: str, n: int = 6, limit: int = 600) -> str:
    """The last ``n`` non-empty lines of a traceback, without terminal colour codes."""
    import re
    lines = [ln.strip() for ln in re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines() if ln.strip()]
    return " | ".join(lines[-n:])[-limit:] or "?"


def notebooks(modes: list[str]) -> tuple[list[dict], str | None]:
    nbs = sorted((C.REPO / "notebooks").glob("[0-9]*.ipynb"))
    if not nbs:
        return [], "no notebooks/*.ipynb yet"
    jupyter = Path(sys.executable).with_name("jupyter")
    cmd0 = [str(jupyter)] if jupyter.exists() else [sys.executable, "-m", "jupyter"]
    rows = []
    for mode in modes:
        with tempfile.TemporaryDirectory(prefix=f"mclfir-bench-nb-{mode}-") as tmp:
            env = os.environ.copy()
            env["MCLFIR_CACHE"] = str(Path(tmp) / "cache")
            env.pop("MCLFIR_QUICK", None)
            if mode == "quick":
                env["MCLFIR_QUICK"] = "1"
            for nb in nbs:
                C.log(f"throughput: notebook {nb.name} ({mode} mode)")
                cmd = cmd0 + ["nbconvert", "--to", "notebook", "--execute", "--output-dir", str(Path(tmp) / "out"),
                              "--ExecutePreprocessor.timeout=-1", str(nb)]
                t0 = time.perf_counter()
                try:
                    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=NOTEBOOK_TIMEOUT[mode],
                                       cwd=str(nb.parent))
                    status = "ok" if p.returncode == 0 else "failed"
                    err = None if p.returncode == 0 else [_last_lines(p.stderr)]
                except subprocess.TimeoutExpired:
                    status, err = "timeout", [f"over {NOTEBOOK_TIMEOUT[mode]} s"]
                rows.append({"notebook": nb.name, "mode": mode, "seconds": round(time.perf_counter() - t0, 1),
                             "status": status, **({"error": err[0]} if err else {})})
                C.log(f"throughput: {nb.name} ({mode}) {status} in {rows[-1]['seconds']:.0f} s")
    return rows, None


def run(quick: bool, seed: int, device: str = "cpu", notebook_modes=None, **_) -> dict:
    rows, reason = extraction(quick, seed, device)
    out = {"device": device, "batch_size": BATCH, "extraction": rows}
    if reason:
        out["cache_skipped"] = reason
    modes = [] if quick else list(notebook_modes if notebook_modes is not None else ("quick", "default"))
    if not modes:
        out["notebooks_skipped"] = "smoke run (--quick)" if quick else "--notebooks none"
        out["notebooks"] = []
    elif shutil.which("jupyter") is None and not Path(sys.executable).with_name("jupyter").exists():
        out["notebooks_skipped"], out["notebooks"] = "jupyter is not installed", []
    else:
        out["notebooks"], why = notebooks(modes)
        if why:
            out["notebooks_skipped"] = why
    return out


def render(r: dict) -> str:
    rows = []
    for x in r["extraction"]:
        if "error" in x:
            rows.append([x["encoder"], "", "", f"error: {x['error']}", "", "", ""])
            continue
        sp = x.get("warm_speedup_vs_raw")
        rows.append([x["encoder"].split("@")[0], x["image_size"], x["images"], x["raw_images_per_second"],
                     x.get("cache_cold_images_per_second"), x.get("cache_warm_images_per_second"),
                     None if sp is None else f"{sp:.0f}x"])
    out = [f"Feature extraction on {r['device']}, batches of {r['batch_size']}, eval mode, no gradients "
           "(images/s; cache = `features.encode_dataset`, cold = encode + write, warm = read back).", "",
           C.table(["encoder", "px", "images", "raw img/s", "cache cold img/s", "cache warm img/s",
                    "warm speed-up"], rows)]
    descr = sorted({x["description"] for x in r["extraction"] if x.get("description")})
    if descr:
        out += ["", "Encoders: " + "; ".join(descr) + "."]
    if r.get("cache_skipped"):
        out += ["", f"Feature cache not measured: {r['cache_skipped']}."]
    if r["notebooks"]:
        modes = sorted({x["mode"] for x in r["notebooks"]}, key=["quick", "default"].index)
        by = {(x["notebook"], x["mode"]): x for x in r["notebooks"]}
        names = sorted({x["notebook"] for x in r["notebooks"]})
        nrows = []
        for nb in names:
            cells = []
            for m in modes:
                x = by.get((nb, m))
                cells.append("" if x is None else f"{x['seconds']:.0f}" + ("" if x["status"] == "ok" else f" ({x['status']})"))
            nrows.append([nb, *cells])
        nrows.append(["**total**", *[f"{sum(x['seconds'] for x in r['notebooks'] if x['mode'] == m):.0f}"
                                     for m in modes]])
        out += ["", "Notebook wall times, seconds (`jupyter nbconvert --execute`, empty cache, notebooks in order):",
                "", C.table(["notebook", *[f"{m} mode" for m in modes]], nrows)]
        bad = [x for x in r["notebooks"] if x["status"] != "ok"]
        if bad:
            out += [""] + [f"- {x['notebook']} ({x['mode']}): {x['status']}: `{x.get('error', '')[-300:]}`" for x in bad]
    elif r.get("notebooks_skipped"):
        out += ["", f"Notebook wall times not measured: {r['notebooks_skipped']}."]
    return "\n".join(out)


if __name__ == "__main__":
    C.main(sys.modules[__name__])
