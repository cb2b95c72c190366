"""map: the vectorised mAP against the per-query reference loop and a bare sort, and its memory at scale.

* Agreement and speed on ``n_queries x n_candidates`` random L2-normalised embeddings
  (d = 128, 8 attribute values): ``metrics.average_precision_per_query`` /
  ``mean_average_precision`` (vectorised, chunked) against
  ``metrics.reference_average_precision`` (a Python loop per query and per candidate, in
  the released code's style). The reference is too slow for all queries, so it runs on a
  subset and its time is extrapolated per query (said so in the results). The timings are
  interleaved (vectorised, reference block, vectorised, ...) so machine load hits both.
* Against a bare sort: the whole mAP call against ``np.sort`` of the same float32 score
  matrix (computed beforehand) at 300 x 3000 and 2k x 20k (quick: 300 x 3000), interleaved,
  with 1 thread and with all cores; the similarities ``q @ c.T`` alone are timed beside
  them. Target at most 1.5x with all cores (an AP must compute the similarities and rank
  them, the sort is given the similarities).
* Peak memory at 100k x 100k: each measurement runs in a fresh subprocess (torch's
  allocations are invisible to tracemalloc), which builds the inputs in chunks, resets the
  kernel's peak-RSS mark (``/proc/self/clear_refs``; ``resource.getrusage`` where that is
  unavailable) and reads the peak resident set size after the call. Two
  chunk sizes show the extra memory scales with ``chunk_size x n_candidates``; a run with
  4x the queries shows it does not grow with the number of queries. These runs fix glibc's
  mmap threshold (the working set, without the heap's caching); two more show the peak
  with glibc's defaults (see :func:`memory`). Sorting
  10^10 keys on a CPU takes too long for a benchmark, so a prefix of the 100k queries is
  processed (memory cannot depend on it: chunks run one after another) and the time for
  all 100k is extrapolated.
"""
from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import time

import _common as C

SIZES = {
    "default": {"n_queries": 2000, "n_candidates": 20000, "dim": 128, "n_values": 8, "ref_queries": 200, "reps": 3,
                "mem_n": 100_000, "mem_chunks": [64, 256], "mem_queries": 1024},  # and 4x as many
    "quick": {"n_queries": 300, "n_candidates": 5000, "dim": 128, "n_values": 8, "ref_queries": 30, "reps": 2,
              "mem_n": 20_000, "mem_chunks": [32, 128], "mem_queries": 512},
}
SPEEDUP_TARGET = 200.0
DIFF_TARGET = 1e-6
SORT_RATIO_TARGET = 1.5
# The mAP against a bare sort of the same score matrix, at these (queries, candidates).
SORT_SIZES = {"default": [(300, 3000), (2000, 20000)], "quick": [(300, 3000)]}


def _embeddings(n: int, dim: int, generator, chunk: int = 8192):
    """``n`` random unit vectors, float32, built ``chunk`` rows at a time (no big temporaries)."""
    import torch
    out = torch.empty(n, dim)
    for s in range(0, n, chunk):
        block = torch.randn(min(chunk, n - s), dim, generator=generator)
        out[s:s + len(block)] = torch.nn.functional.normalize(block, dim=1)
    return out


def _data(n_q, n_c, dim, n_values, seed):
    import torch
    g = torch.Generator().manual_seed(seed)
    q, c = _embeddings(n_q, dim, g), _embeddings(n_c, dim, g)
    return q, c, torch.randint(0, n_values, (n_q,), generator=g), torch.randint(0, n_values, (n_c,), generator=g)


def speed_and_agreement(p: dict, seed: int, device: str) -> dict:
    import numpy as np
    from mclfir_lite.core import metrics
    q, c, ql, cl = _data(p["n_queries"], p["n_candidates"], p["dim"], p["n_values"], seed)
    qd, cd, qld, cld = (t.to(device) for t in (q, c, ql, cl))
    metrics.average_precision_per_query(qd[:8], cd, qld[:8], cld)  # warm-up (lazy imports, allocator)
    n_ref = p["ref_queries"]
    blocks = np.array_split(np.arange(n_ref), max(1, p["reps"] - 1))
    vec_times, ref_seconds, ref_aps, aps = [], 0.0, [], None
    for k in range(p["reps"]):
        C.log(f"map: vectorised {p['n_queries']}x{p['n_candidates']} (rep {k + 1}/{p['reps']})")
        t0 = time.perf_counter()
        aps = metrics.average_precision_per_query(qd, cd, qld, cld)
        if device != "cpu":
            import torch
            torch.cuda.synchronize()
        vec_times.append(time.perf_counter() - t0)
        if k < len(blocks):
            rows = blocks[k]
            C.log(f"map: reference loop on queries {rows[0]}..{rows[-1]}")
            t0 = time.perf_counter()
            ref_aps.append(metrics.reference_average_precision(q[rows], c, ql[rows], cl))
            ref_seconds += time.perf_counter() - t0
    ref = np.concatenate(ref_aps)
    mean_vec = metrics.mean_average_precision(qd, cd, qld, cld)
    diff = float(np.nanmax(np.abs(aps[:n_ref] - ref)))
    vec_per_q = statistics.median(vec_times) / p["n_queries"]
    ref_per_q = ref_seconds / n_ref
    return {
        "n_queries": p["n_queries"], "n_candidates": p["n_candidates"], "dim": p["dim"], "n_values": p["n_values"],
        "device": device,
        "max_abs_ap_difference": diff,
        "map_difference_on_subset": float(abs(np.nanmean(aps[:n_ref]) - np.nanmean(ref))),
        "mean_average_precision": mean_vec,
        "vectorised_seconds": [round(t, 4) for t in vec_times],
        "vectorised_seconds_median": statistics.median(vec_times),
        "reference_queries_timed": n_ref,
        "reference_seconds_on_subset": ref_seconds,
        "reference_seconds_extrapolated": ref_per_q * p["n_queries"],
        "reference_ms_per_query": ref_per_q * 1e3,
        "vectorised_ms_per_query": vec_per_q * 1e3,
        "speedup": ref_per_q / vec_per_q,
        "note": (f"reference timed on {n_ref} of {p['n_queries']} queries and extrapolated per query; "
                 f"vectorised: median of {p['reps']} full runs interleaved with the reference blocks"),
    }


# ---------------------------------------------------------------------------- memory (subprocess)

def _memory_worker(n: int, n_processed: int, chunk: int, dim: int, seed: int, device: str) -> dict:
    import gc
    import torch
    from mclfir_lite.core import metrics
    from mclfir_lite.data.imagedata import peak_rss_mb

    def rss_peak_mib():
        """Peak RSS since the last reset_peak() (Linux VmHWM), else since the process started."""
        return peak_rss_mb()["self"]

    def reset_peak():
        """Reset the high-water mark to the current RSS (Linux >= 4.0), so that the spike of
        importing torch does not hide what comes after. Returns whether it worked."""
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    g = torch.Generator().manual_seed(seed)
    metrics.average_precision_per_query(torch.eye(4, dim), torch.eye(8, dim), torch.zeros(4, dtype=torch.long),
                                        torch.zeros(8, dtype=torch.long))  # warm-up: imports, kernels
    exact = reset_peak()
    before_inputs = rss_peak_mib()
    q, c = _embeddings(n, dim, g), _embeddings(n, dim, g)
    ql, cl = torch.randint(0, 8, (n,), generator=g), torch.randint(0, 8, (n,), generator=g)
    if device != "cpu":
        q, c, ql, cl = (t.to(device) for t in (q, c, ql, cl))
        torch.cuda.reset_peak_memory_stats()
    gc.collect()
    reset_peak()
    baseline = rss_peak_mib()
    t0 = time.perf_counter()
    aps = metrics.average_precision_per_query(q[:n_processed], c, ql[:n_processed], cl, chunk_size=chunk)
    if device != "cpu":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    peak = rss_peak_mib()
    out = {"n_queries_total": n, "n_candidates": n, "queries_processed": n_processed, "chunk_size": chunk,
           "inputs_mib": round(baseline - before_inputs, 1),
           "rss_peak_before_call_mib": round(baseline, 1), "rss_peak_after_call_mib": round(peak, 1),
           "extra_peak_mib": round(peak - baseline, 1),
           "bytes_per_chunk_element": round((peak - baseline) * 2 ** 20 / (chunk * n), 1),
           "seconds": round(seconds, 2), "ms_per_query": round(seconds / n_processed * 1e3, 3),
           "finite_aps": int((aps == aps).sum()),
           "peak_source": "VmHWM reset before the call" if exact else "getrusage ru_maxrss (process lifetime)"}
    if device != "cpu":
        out["cuda_peak_mib"] = round(torch.cuda.max_memory_allocated() / 2 ** 20, 1)
    return out


def _memory_run(n, n_processed, chunk, dim, seed, device, fixed_mmap_threshold: bool = False) -> dict:
    env = os.environ.copy()
    if fixed_mmap_threshold:
        # A fixed threshold turns off glibc's dynamic one (see memory()): every buffer of
        # 1 MiB or more is its own mmap, returned to the system when freed.
        env["MALLOC_MMAP_THRESHOLD_"] = str(1 << 20)
    cmd = [sys.executable, __file__, "--memory-worker", json.dumps(
        {"n": n, "n_processed": n_processed, "chunk": chunk, "dim": dim, "seed": seed, "device": device})]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=str(C.REPO), env=env)
    if out.returncode != 0:
        raise RuntimeError(f"memory worker failed ({out.returncode}): {out.stderr[-2000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["allocator"] = "glibc, fixed mmap threshold 1 MiB" if fixed_mmap_threshold else "glibc default"
    return res


def memory(p: dict, seed: int, device: str) -> dict:
    """The working set: with glibc's mmap threshold fixed, the small chunk with N and 4N
    queries (does memory grow with the queries?) and the large chunk with N (does it grow
    with the chunk?). Then the process as users run it, glibc's defaults: the small chunk
    with 4N queries and the large one with N.

    Why both: glibc raises its mmap threshold (up to 32 MiB) each time a large block is
    freed, so after the first chunk, buffers under 32 MiB come from the heap, which keeps
    freed memory for reuse; with small chunks the process's peak RSS is then higher than
    the working set, by an amount that varies from run to run. Buffers over 32 MiB (large
    chunks) are always mapped and unmapped, so there both settings agree."""
    n, (small, large), nq = p["mem_n"], p["mem_chunks"], p["mem_queries"]
    plan = [(small, nq, True), (small, 4 * nq, True), (large, nq, True), (small, 4 * nq, False), (large, nq, False)]
    runs = []
    for chunk, processed, fixed in plan:
        C.log(f"map: peak memory, {n:,} x {n:,}, chunk {chunk}, {processed} queries ranked, "
              f"{'fixed mmap threshold' if fixed else 'glibc defaults'} (subprocess)")
        runs.append(_memory_run(n, processed, chunk, p["dim"], seed, device, fixed))
    a, more, b, a_default, b_default = runs
    ratio = lambda x, y: x["extra_peak_mib"] / y["extra_peak_mib"] if y["extra_peak_mib"] > 0 else None
    per_q = statistics.median([r["ms_per_query"] for r in runs]) / 1e3
    return {
        "runs": runs,
        "chunk_ratio": large / small,
        "extra_memory_ratio_large_vs_small_chunk": ratio(b, a),
        "extra_memory_ratio_4x_queries": ratio(more, a),
        "working_set_bytes_per_chunk_element": statistics.mean(r["bytes_per_chunk_element"] for r in (a, more, b)),
        "default_allocator_extra_mib": {"small_chunk_4x_queries": a_default["extra_peak_mib"],
                                        "large_chunk": b_default["extra_peak_mib"]},
        "full_seconds_extrapolated": per_q * n,
        # bounded: 4x the queries adds at most 15% (or 32 MiB, noise at small sizes), a 4x chunk at least doubles it
        "bounded_by_chunk": bool(more["extra_peak_mib"] - a["extra_peak_mib"] <= max(0.15 * a["extra_peak_mib"], 32)
                                 and b["extra_peak_mib"] > 2 * a["extra_peak_mib"]),
        "note": (f"{n:,} queries and {n:,} candidates are built (inputs {runs[0]['inputs_mib']} MiB); the first "
                 f"{nq} or {4 * nq} queries are ranked, the time for all extrapolated per query; peak RSS (VmHWM, "
                 "reset before the call; else getrusage) in a fresh subprocess per run. Working set measured with "
                 "MALLOC_MMAP_THRESHOLD_ fixed at 1 MiB; with glibc's dynamic threshold, freed buffers under 32 MiB "
                 "stay in the heap, so small chunks peak higher, by a varying amount"),
    }


@contextlib.contextmanager
def _limit_threads(n: int):
    """Run with ``n`` torch threads (the AP's chunks and its matrix products run on them;
    nothing timed here uses numpy's BLAS)."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def sort_ratio(sizes, dim: int, n_values: int, seed: int, device: str, reps: int = 7) -> list[dict]:
    """Time ``average_precision_per_query`` (similarities, ranking, AP: everything) against a
    bare sort of the same float32 score matrix ``q @ c.T`` (already computed; ``np.sort``
    along rows on the CPU, ``torch.sort`` on a GPU): the floor any full-ranking AP pays.
    The similarities alone (the matrix product) are timed too: the AP must compute them,
    the sort is given them. On the CPU each size runs with 1 thread and with all cores
    (``np.sort`` itself uses one). The three are interleaved, ``reps`` times each, and the
    medians compared."""
    import numpy as np
    import torch
    from mclfir_lite.core import metrics
    out = []
    from mclfir_lite.settings import usable_cores
    cores = torch.get_num_threads() if device != "cpu" else usable_cores()
    for n_q, n_c in sizes:
        q, c, ql, cl = (t.to(device) for t in _data(n_q, n_c, dim, n_values, seed))
        scores = q @ c.T
        if device == "cpu":
            sn = scores.numpy()
            sort = lambda: np.sort(sn, axis=1)
        else:
            sort = lambda: torch.sort(scores, dim=1)
        matmul = lambda: q @ c.T   # as the AP computes them (torch; its threads set by _limit_threads)
        for threads in sorted({1, cores}):
            with _limit_threads(threads):
                times = {"map": [], "sort": [], "matmul": []}
                metrics.average_precision_per_query(q[:8], c, ql[:8], cl)  # warm-up
                for k in range(reps):
                    C.log(f"map: mAP vs sort {n_q}x{n_c}, {threads} thread(s) (rep {k + 1}/{reps})")
                    for name, fn in (("map", lambda: metrics.average_precision_per_query(q, c, ql, cl)),
                                     ("sort", sort), ("matmul", matmul)):
                        t0 = time.perf_counter()
                        fn()
                        if device != "cpu":
                            torch.cuda.synchronize()
                        times[name].append(time.perf_counter() - t0)
            ap_s, sort_s, mm_s = (statistics.median(times[k]) for k in ("map", "sort", "matmul"))
            out.append({"n_queries": n_q, "n_candidates": n_c, "threads": threads, "map_seconds": ap_s,
                        "sort_seconds": sort_s, "matmul_seconds": mm_s, "ratio": ap_s / sort_s,
                        "matmul_over_sort": mm_s / sort_s, "met": ap_s / sort_s <= SORT_RATIO_TARGET})
    return out


# ---------------------------------------------------------------------------- entry points

# The strategies whose runs make the result (benchmarks/_common.code_scope): a change to another one's code leaves it fresh.
CODE_SCOPE = ()   # the metrics only: shared code


def run(quick: bool, seed: int, device: str = "cpu", **_) -> dict:
    p = SIZES["quick" if quick else "default"]
    speed = speed_and_agreement(p, seed, device)
    vs_sort = sort_ratio(SORT_SIZES["quick" if quick else "default"], p["dim"], p["n_values"], seed, device)
    mem = memory(p, seed, device)
    return {"sizes": p, "speed": speed, "vs_sort": vs_sort, "memory": mem,
            "targets": {"max_abs_ap_difference": DIFF_TARGET, "speedup": SPEEDUP_TARGET,
                        "map_over_sort": SORT_RATIO_TARGET},
            "met": {"agreement": speed["max_abs_ap_difference"] <= DIFF_TARGET,
                    "speedup": speed["speedup"] >= SPEEDUP_TARGET,
                    # judged with all cores (as users run it); the 1-thread rows are reported beside
                    "map_over_sort": all(x["met"] for x in vs_sort
                                         if x.get("threads", 1) == max(y.get("threads", 1) for y in vs_sort)),
                    "memory_bounded_by_chunk": mem["bounded_by_chunk"]}}


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _sort_floor(rows: list[dict]) -> str:
    """What any full-ranking AP pays here: the similarities plus one sort of them."""
    rows = [x for x in rows if x.get("matmul_over_sort") is not None]
    if not rows:
        return ""
    one = [x for x in rows if x.get("threads") == 1]
    floors = [1 + x["matmul_over_sort"] for x in (one or rows)]
    return (f"An AP over the full ranking must compute the similarities and sort them: on one thread its floor "
            f"is 1 + similarities / sort = {min(floors):.2f}-{max(floors):.2f}x the bare sort here (the target is "
            f"{SORT_RATIO_TARGET:g}x); the rest is packing the keys, finding the relevant candidates' ranks and "
            "breaking ties. With all cores the AP ranks chunks of queries on several threads at once, while "
            "`np.sort` uses one.")


def render(r: dict) -> str:
    s, m, met = r["speed"], r["memory"], r["met"]
    size = f"{s['n_queries']:,} queries x {s['n_candidates']:,} candidates, d={s['dim']}"
    out = [f"Vectorised `metrics.average_precision_per_query` vs `metrics.reference_average_precision` "
           f"({size}, {s['device']}).",
           "",
           C.table(["measure", "value", "target", "met"], [
               ["max abs AP difference", s["max_abs_ap_difference"], f"<= {DIFF_TARGET:g}", met["agreement"]],
               [f"vectorised, s (all {s['n_queries']:,} queries, median of {len(s['vectorised_seconds'])})",
                s["vectorised_seconds_median"], "", ""],
               ["reference, s (extrapolated from "
                f"{s['reference_queries_timed']} queries)", s["reference_seconds_extrapolated"], "", ""],
               ["speed-up", f"{s['speedup']:.1f}x", f">= {SPEEDUP_TARGET:g}x", met["speedup"]],
           ]),
           "",
           "The whole mAP (similarities, ranking, AP) against a bare sort of the same float32 score matrix "
           "(median of interleaved repetitions). The similarities alone (`q @ c.T`, which the sort is given) "
           "are timed too: they are part of any mAP's cost.",
           "",
           C.table(["queries x candidates", "threads", "mAP, s", "sort, s", "mAP / sort", f"<= {SORT_RATIO_TARGET:g}",
                    "similarities / sort"],
                   [[f"{x['n_queries']:,} x {x['n_candidates']:,}", x.get("threads", ""), x["map_seconds"],
                     x["sort_seconds"], f"{x['ratio']:.2f}", x["met"], C.fmt(x.get("matmul_over_sort"), ".2f")]
                    for x in r.get("vs_sort", [])]),
           "",
           _sort_floor(r.get("vs_sort", [])),
           "",
           f"Peak memory, {m['runs'][0]['n_candidates']:,} x {m['runs'][0]['n_candidates']:,} "
           f"(extra peak RSS of the call over inputs already in memory; {m['runs'][0]['n_candidates']:,} queries "
           "built, the first ones ranked):",
           "",
           C.table(["chunk size", "queries ranked", "allocator", "extra peak MiB", "bytes / (chunk x candidates)",
                    "ms / query"],
                   [[x["chunk_size"], x["queries_processed"], x.get("allocator", ""), f"{x['extra_peak_mib']:.0f}",
                     f"{x['bytes_per_chunk_element']:.0f}", x["ms_per_query"]] for x in m["runs"]]),
           "",
           f"Working set (fixed mmap threshold): 4x the queries -> x{C.fmt(m['extra_memory_ratio_4x_queries'], '.2f')}, "
           f"chunk size x{m['chunk_ratio']:g} -> x{C.fmt(m['extra_memory_ratio_large_vs_small_chunk'], '.2f')}: "
           f"bounded by the chunk ({'yes' if m['bounded_by_chunk'] else 'NO'}), "
           f"~{m['working_set_bytes_per_chunk_element']:.0f} bytes per (query in the chunk x candidate). "
           "With glibc's defaults, freed buffers under 32 MiB stay in the heap for reuse, so small chunks peak "
           "higher than their working set, by an amount that varies between runs; chunks whose score matrix "
           "exceeds 32 MiB (chunk x candidates x 4 bytes) peak at their working set. "
           f"All {m['runs'][0]['n_queries_total']:,} queries would take about "
           f"{_duration(m['full_seconds_extrapolated'])} (extrapolated).",
           ]
    if not met["speedup"]:
        out += ["", f"Speed-up target not met: the reference sorts with numpy too, and its Python loop costs "
                f"~{s['reference_ms_per_query'] / s['n_candidates'] * 1e6:.0f} ns per candidate; the vectorised "
                f"version spends ~{s['vectorised_ms_per_query'] / s['n_candidates'] * 1e6:.0f} ns per candidate, "
                "mostly in sorting the scores, as a full-ranking AP must, so the gap is the loop's overhead, not an order "
                "of growth."]
    return "\n".join(out)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--memory-worker":
        a = json.loads(sys.argv[2])
        print(json.dumps(_memory_worker(a["n"], a["n_processed"], a["chunk"], a["dim"], a["seed"], a["device"])))
    else:
        C.main(sys.modules[__name__])
