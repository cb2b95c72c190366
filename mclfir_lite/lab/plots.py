"""Figures: forgetting curves, the accuracy matrix, grids of retrieved neighbours, AP histograms
and embedding scatters.

Every function draws onto matplotlib axes it is given (or makes a figure) and returns
the figure, so notebooks, widgets and the headless demo share them.

Results of several seeds: wherever a function takes ``{strategy: result}``, a value may
also be a list of result dicts (one per seed); :func:`aggregate` turns it into one result
whose ``map_matrix`` is the mean and ``map_matrix_std`` the spread, which the curves draw
as a band. A single result that already has ``map_matrix_std`` is drawn the same way.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

DPI = 100              # the dpi figures are drawn and saved at: 1 figure pixel = 1 screen pixel
MIN_THUMB_PX = 64      # thumbnails are upscaled (nearest neighbour) to at least this size


def pyplot():
    """matplotlib.pyplot, on the Agg backend outside a notebook (no window, no display needed)."""
    import matplotlib
    if matplotlib.get_backend().lower() in ("", "agg") or not _interactive():
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    return plt


def _interactive() -> bool:
    try:
        from IPython import get_ipython
        return get_ipython() is not None
    except ImportError:
        return False


def margins(fig, left=0.6, right=0.15, bottom=0.5, top=0.35, wspace=0.25, hspace=0.4):
    """Fixed margins in inches (much faster than constrained layout, which matters in a widget)."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=left / w, right=1 - right / w, bottom=bottom / h, top=1 - top / h,
                        wspace=wspace, hspace=hspace)
    return fig


# ---------------------------------------------------------------------------- results

def nan_matrix(rows) -> np.ndarray:
    """A result's ``map_matrix`` (rows of numbers or None) as a float array, None as NaN."""
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=float)


def _nan_mean_std(values) -> tuple[float | None, float | None]:
    v = np.array([np.nan if x is None else x for x in values], dtype=float)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return None, None
    return float(v.mean()), float(v.std())


def aggregate(result) -> dict:
    """One result dict from a result or a list of results of the same strategy (seeds).

    A list gives the mean ``map_matrix``, ``map_matrix_std`` (population std over seeds),
    the mean and std of ``forgetting``, ``bwt`` and ``mean_final_map`` (``None`` entries,
    e.g. the forgetting of a strategy retrained from scratch, are left out; all ``None``
    stays ``None``), and ``n_seeds``. A dict is returned as it is.
    """
    if isinstance(result, dict):
        return result
    results = list(result)
    if not results:
        raise ValueError("aggregate: empty list of results")
    first = results[0]
    for r in results[1:]:
        if r["attributes"] != first["attributes"] or len(r["map_matrix"]) != len(first["map_matrix"]):
            raise ValueError(f"aggregate: results of {first.get('strategy', '?')} have different attributes or "
                             f"increments ({first['attributes']} vs {r['attributes']})")
    stack = np.stack([nan_matrix(r["map_matrix"]) for r in results])
    with warnings.catch_warnings():   # an attribute not seen yet is NaN in every seed
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, std = np.nanmean(stack, axis=0), np.nanstd(stack, axis=0)
    out = dict(first)
    out["map_matrix"] = [[None if np.isnan(v) else float(v) for v in row] for row in mean]
    out["map_matrix_std"] = [[None if np.isnan(v) else float(v) for v in row] for row in std]
    for key in ("forgetting", "bwt", "mean_final_map"):
        out[key], out[key + "_std"] = _nan_mean_std([r.get(key) for r in results])
    out["final_map"] = {a: float(np.mean([r["final_map"][a] for r in results]))
                        for a in first.get("final_map", {}) if all(a in r.get("final_map", {}) for r in results)}
    out["n_seeds"] = len(results)
    return out


def row_means(R: np.ndarray) -> np.ndarray:
    """Mean of each row over its non-NaN entries (NaN for an all-NaN row)."""
    return np.array([r[~np.isnan(r)].mean() if (~np.isnan(r)).any() else np.nan for r in R])


def chance_curve(result: dict, attribute: str | None, chance: dict[str, float]) -> np.ndarray:
    """Chance mAP per increment: ``chance[attribute]`` after it arrives, or (``attribute=None``)
    the mean chance over the attributes seen so far (NaN where nothing is seen)."""
    R = nan_matrix(result["map_matrix"])
    attrs = result["attributes"]
    seen = ~np.isnan(R)
    if attribute is not None:
        return np.where(seen[:, attrs.index(attribute)], chance.get(attribute, np.nan), np.nan)
    c = np.array([chance.get(a, np.nan) for a in attrs], dtype=float)
    return np.array([c[s].mean() if s.any() else np.nan for s in seen])


# ---------------------------------------------------------------------------- curves and matrices

def plot_forgetting_curves(results: dict, attribute: str | None = None, ax=None, chance: dict | None = None):
    """Per-attribute mAP across increments, one line per strategy.

    ``results``: ``{strategy: result dict, or list of result dicts (seeds)}``. With
    ``attribute`` the curve of that attribute; otherwise the mean over the attributes seen
    so far. The seeds' spread (mean +- std) is a band. ``chance`` (``{attribute: chance
    mAP}``, default: the results' ``chance_map`` when they have one) is drawn dashed.
    """
    plt = pyplot()
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5, 3.2), dpi=DPI)
    n_inc = 1
    for name, res in results.items():
        res = aggregate(res)
        R = nan_matrix(res["map_matrix"])
        S = nan_matrix(res["map_matrix_std"]) if res.get("map_matrix_std") is not None else None
        if attribute is not None:
            j = res["attributes"].index(attribute)
            y, s = R[:, j], (S[:, j] if S is not None else None)
        else:
            y = row_means(R)
            s = row_means(S) if S is not None else None
        x = np.arange(1, len(y) + 1)
        n_inc = max(n_inc, len(y))
        label = name + (f" ({res['n_seeds']} seeds)" if res.get("n_seeds", 1) > 1 else "")
        line, = ax.plot(x, y, marker="o", label=label)
        if s is not None:
            ax.fill_between(x, y - s, y + s, color=line.get_color(), alpha=0.2, linewidth=0)
    first = aggregate(next(iter(results.values()))) if results else None
    chance = chance if chance is not None else (first or {}).get("chance_map")
    if chance and first is not None:
        c = chance_curve(first, attribute, chance)
        ax.step(np.arange(1, len(c) + 1), c, where="mid", color="0.4", linestyle="--", linewidth=1.2,
                label="chance")
    ax.set_xlabel("after increment")
    ax.set_ylabel(f"mAP ({attribute})" if attribute else "mean mAP over seen attributes")
    ax.set_xticks(np.arange(1, n_inc + 1))
    ax.set_xlim(0.7, n_inc + 0.3)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return fig


def plot_accuracy_matrix(result, ax=None, title: str | None = None):
    """Heatmap of R[i][j] = mAP on attribute j after increment i (blank: not seen yet).
    ``result`` may be a list of seeds' results (the mean is drawn)."""
    plt = pyplot()
    result = aggregate(result)
    R = nan_matrix(result["map_matrix"])
    if ax is None:
        fig, ax = plt.subplots(figsize=(0.9 + 0.75 * R.shape[1], 0.9 + 0.35 * R.shape[0]), dpi=DPI,
                               layout="constrained")
    fig = ax.figure
    ax.imshow(np.ma.masked_invalid(R), vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for i in range(R.shape[0]):
        for j in range(R.shape[1]):
            if not np.isnan(R[i, j]):
                ax.text(j, i, f"{R[i, j]:.2f}", ha="center", va="center",
                        color="white" if R[i, j] < 0.6 else "black", fontsize=8)
    ax.set_xticks(range(R.shape[1]), result["attributes"], rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(R.shape[0]), [f"inc {i + 1}" for i in range(R.shape[0])], fontsize=8)
    ax.set_title(title or result.get("strategy", ""), fontsize=9)
    return fig


def matrix_grid_size(results: dict, max_width: float = 10.0) -> dict:
    """Layout (in inches) of a grid of accuracy-matrix heatmaps, at most four per row and
    ``max_width`` wide: ``{ncol, nrow, cell_w, mat_h, label_h, height}``."""
    first = aggregate(next(iter(results.values())))
    n, n_attr, n_inc = len(results), len(first["attributes"]), len(first["map_matrix"])
    cell_w = 0.35 + 0.42 * n_attr
    ncol = max(1, min(n, 4, int((max_width - 0.9) // cell_w)))
    nrow = math.ceil(n / ncol)
    mat_h = 0.55 + 0.24 * n_inc
    label_h = 0.045 * max(len(a) for a in first["attributes"]) + 0.3     # names rotated 35 degrees
    height = 0.35 + nrow * mat_h + (nrow - 1) * (label_h + 0.35) + label_h
    return {"ncol": ncol, "nrow": nrow, "cell_w": cell_w, "mat_h": mat_h, "label_h": label_h, "height": height,
            "width": 0.9 + ncol * cell_w}


def matrix_grid(fig, results: dict, titles: dict | None = None, top: float = 0.0) -> list:
    """Draw one accuracy-matrix heatmap per strategy into ``fig``, below ``top`` inches from
    its top edge, in the :func:`matrix_grid_size` layout; only the first column keeps the
    increment labels. Returns the axes."""
    g = matrix_grid_size(results)
    w, h = fig.get_size_inches()
    grid = fig.add_gridspec(g["nrow"], g["ncol"], left=0.75 / w, right=1 - 0.15 / w, bottom=g["label_h"] / h,
                            top=1 - (top + 0.35) / h, hspace=(g["label_h"] + 0.35) / g["mat_h"], wspace=0.15)
    axes = [fig.add_subplot(grid[i // g["ncol"], i % g["ncol"]]) for i in range(g["nrow"] * g["ncol"])]
    for k, (ax, (name, res)) in enumerate(zip(axes, results.items())):
        plot_accuracy_matrix(res, ax=ax, title=(titles or {}).get(name, name))
        if k % g["ncol"]:
            ax.set_yticks([])
    for ax in axes[len(results):]:
        ax.axis("off")
    return axes


def plot_strategies(results: dict):
    """Accuracy matrices of several strategies side by side (at most four per row; only the
    first column shows the increment labels)."""
    plt = pyplot()
    g = matrix_grid_size(results)
    fig = plt.figure(figsize=(g["width"], g["height"]), dpi=DPI)
    matrix_grid(fig, results)
    return fig


def plot_cost_curves(curves: dict):
    """MeanAP against cost, one line per method (``benchmarks/bench_cost_curves.py``'s result:
    its ``mean`` points, ``line`` and ``reference``): against the images forwarded (training
    samples + teacher forwards) and against training time, both on log axes, with the line."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4), dpi=DPI, sharey=True)
    line, ref = curves["line"], curves["reference"]
    for name, pts in curves["mean"].items():
        for ax, x in zip(axes, ("images", "seconds")):
            ax.plot([p[x] for p in pts], [p["meanap"] for p in pts], marker="o", label=name)
    for ax, label in zip(axes, ("images forwarded (training + teacher)", "training time (s, one torch thread)")):
        ax.axhline(line, color="grey", ls=":", lw=0.8, label=f"{curves['target']:.0%} of {ref['method']} at x{ref['budget']:g}")
        ax.set(xscale="log", xlabel=label)
        ax.xaxis.set_minor_formatter(plt.NullFormatter())   # major ticks only: the minor ones overlap
    axes[0].set_ylabel("MeanAP")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------- neighbours

def upscale(image: np.ndarray, min_px: int = MIN_THUMB_PX) -> np.ndarray:
    """``image`` (H, W, C) repeated by the smallest integer factor that makes it at least
    ``min_px`` wide: a nearest-neighbour upscale, crisp on screen."""
    f = max(1, math.ceil(min_px / max(1, image.shape[1])))
    return np.repeat(np.repeat(image, f, axis=0), f, axis=1) if f > 1 else image


def plot_neighbours(query_image: np.ndarray, neighbour_images: list[np.ndarray], relevant: list[bool],
                    title: str = "", captions: list[str] | None = None, axes=None):
    """The query, then its top-k neighbours framed green (relevant) or red (not)."""
    plt = pyplot()
    k = len(neighbour_images)
    if axes is None:
        fig, axes = plt.subplots(1, k + 1, figsize=(1.3 * (k + 1), 1.7), dpi=DPI)
    fig = axes[0].figure
    axes[0].imshow(query_image, interpolation="nearest")
    axes[0].set_title("query", fontsize=8)
    for ax, img, rel, cap in zip(axes[1:], neighbour_images, relevant, captions or [""] * k):
        ax.imshow(img, interpolation="nearest")
        _frame(ax, rel)
        ax.set_title(cap, fontsize=7)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].set_ylabel(title, fontsize=8)
    return fig


def _frame(ax, relevant: bool | None) -> None:
    for spine in ax.spines.values():
        spine.set_edgecolor("0.3" if relevant is None else "tab:green" if relevant else "tab:red")
        spine.set_linewidth(1 if relevant is None else 3)


def _font(size: int):
    """DejaVu Sans (matplotlib's own font, so the PIL-drawn grids match the figures) at ``size`` px."""
    from matplotlib import font_manager
    from PIL import ImageFont
    return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)


def _fit(draw, text: str, font, width: int) -> str:
    """``text`` shortened with an ellipsis until it fits ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while len(text) > 1 and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


GREEN, RED, GREY = (44, 160, 44), (214, 39, 40), (90, 90, 90)


def neighbour_rows_image(rows: list[dict], title: str = "", thumb_px: int | None = None):
    """Linked rows of neighbours drawn straight into pixels: ``(image, boxes)``.

    Each row is ``{"label": str, "query": (H, W, 3) uint8, "images": [...], "relevant":
    [bool...], "captions": [str...]}``, or ``{"label": str, "message": str}`` for a model
    that cannot answer. Thumbnails are upscaled (nearest neighbour) to at least
    ``MIN_THUMB_PX`` and framed green (relevant), red (not) or grey (the query); captions
    that do not fit a cell are shortened with an ellipsis, so that no label overlaps
    another. ``image`` is ``(H, W, 3)`` uint8, meant to be shown at its natural size;
    ``boxes`` lists ``(row, column, x, y, width, height)`` of every thumbnail.
    Pixels, not matplotlib axes: a grid of 4 x 9 thumbnails draws in milliseconds.
    """
    from PIL import Image, ImageDraw
    firsts = [r["query"] for r in rows if "message" not in r]
    if thumb_px is None:
        thumb_px = upscale(np.asarray(firsts[0])).shape[1] if firsts else MIN_THUMB_PX
    k = max([len(r.get("images", [])) for r in rows] + [1])
    font, small = _font(13), _font(11)
    cell = max(thumb_px, 84) + 8
    frame, label_w, cap_h, gap, title_h = 3, 140, 30, 14, (26 if title else 6)
    row_h = cap_h + thumb_px + 2 * frame + 10
    W, H = label_w + gap + (k + 1) * cell, title_h + row_h * len(rows)
    canvas = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((6, 5), _fit(draw, title, font, W - 12), fill="black", font=font)
    boxes = []
    for i, r in enumerate(rows):
        y_img = title_h + i * row_h + cap_h
        y_mid = y_img + thumb_px // 2
        lines = r["label"].split("\n")
        for n, line in enumerate(lines):
            draw.text((6, y_mid + (n - len(lines) / 2) * 16), _fit(draw, line, font, label_w - 10), fill="black",
                      font=font)
        if "message" in r:
            draw.text((label_w, y_mid - 8), _fit(draw, r["message"], font, W - label_w - 6), fill=GREY, font=font)
            continue
        cells = [(r["query"], None, "query")] + list(zip(r["images"], r["relevant"], r["captions"]))
        for c, (img, rel, cap) in enumerate(cells):
            x = label_w + c * cell + (gap if c else 0) + (cell - thumb_px) // 2
            colour = GREY if rel is None else GREEN if rel else RED
            width = 1 if rel is None else frame
            draw.rectangle([x - width, y_img - width, x + thumb_px + width - 1, y_img + thumb_px + width - 1],
                           fill=colour)
            pixels = upscale(np.asarray(img, dtype=np.uint8), thumb_px)[:thumb_px, :thumb_px]
            canvas.paste(Image.fromarray(np.ascontiguousarray(pixels)), (x, y_img))
            boxes.append((i, c, x, y_img, pixels.shape[1], pixels.shape[0]))
            cap_lines = str(cap).split("\n")
            for n, line in enumerate(cap_lines):
                line = _fit(draw, line, small, cell - 4)
                tw = draw.textlength(line, font=small)
                draw.text((x + (thumb_px - tw) / 2, y_img - frame - 2 - (len(cap_lines) - n) * 13), line,
                          fill="black", font=small)
    return np.asarray(canvas), boxes


def plot_neighbour_rows(rows: list[dict], title: str = "", thumb_px: int | None = None):
    """:func:`neighbour_rows_image` as a matplotlib figure of exactly its pixel size at ``DPI``
    (shown at natural size inline). The figure keeps ``.pixels`` and ``.boxes``.

    The pixels are drawn with ``imshow`` on one axes that fills the figure: a figure without
    axes (``figimage``) is cropped to nothing by the inline backend's tight bounding box and
    shows as a blank ``<Figure ... with 0 Axes>``."""
    plt = pyplot()
    pixels, boxes = neighbour_rows_image(rows, title, thumb_px)
    h, w = pixels.shape[:2]
    fig = plt.figure(figsize=(w / DPI, h / DPI), dpi=DPI)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(pixels, interpolation="nearest", aspect="auto")
    ax.set_axis_off()
    fig.pixels, fig.boxes = pixels, boxes
    return fig


# ---------------------------------------------------------------------------- histograms and scatters

def plot_ap_histograms(aps: dict[str, np.ndarray], marked: dict[str, float | None] | None = None,
                       chance: float | None = None, title: str = ""):
    """Per-query AP histograms, one small panel per strategy (same bins and y-scale), the
    marked query's AP as a red line and chance mAP dashed."""
    plt = pyplot()
    n = max(1, len(aps))
    fig, axes = plt.subplots(1, n, figsize=(0.45 + 2.3 * n, 2.1), dpi=DPI, squeeze=False, sharey=True)
    margins(fig, left=0.5, right=0.1, bottom=0.45, top=0.3 + 0.2 * bool(title), wspace=0.12)
    bins = np.linspace(0, 1, 21)
    for ax, (name, values) in zip(axes[0], aps.items()):
        v = np.asarray(values, dtype=float)
        v = v[~np.isnan(v)]
        ax.hist(v, bins=bins, color="tab:blue", alpha=0.75)
        if chance is not None:
            ax.axvline(chance, color="0.3", linestyle="--", linewidth=1.2, label=f"chance {chance:.2f}")
        m = (marked or {}).get(name)
        if m is not None:
            ax.axvline(m, color="tab:red", linewidth=2, label=f"this query {m:.3f}")
        ax.set_title(f"{name}: mAP {v.mean():.3f}" if v.size else name, fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_xlabel("AP of a query", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="upper right")
        ax.yaxis.get_major_locator().set_params(integer=True)
    axes[0][0].set_ylabel("queries", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def plot_embedding_scatter(panels: dict[str, dict], value_names: list[str], title: str = ""):
    """One scatter per strategy of 2-d projected gallery embeddings coloured by value.

    Each panel: ``{"available": bool, "message": str, "xy": (n, 2), "labels": (n,),
    "query_xy": (2,), "top_xy": (k, 2), "top_relevant": (k,), "limits": (x0, x1, y0, y1)}``.
    The query is a black star, its top-k neighbours are ringed (green relevant, red not).
    """
    plt = pyplot()
    n = max(1, len(panels))
    fig, axes = plt.subplots(1, n, figsize=(1.4 + 3.1 * n, 3.5), dpi=DPI, squeeze=False)
    margins(fig, left=0.3, right=1.4, bottom=0.3, top=0.5, wspace=0.1)
    cmap = plt.get_cmap("tab10" if len(value_names) <= 10 else "tab20")
    for ax, (name, p) in zip(axes[0], panels.items()):
        ax.set_title(name, fontsize=9)
        if not p["available"]:
            ax.axis("off")
            ax.text(0.5, 0.5, p["message"], ha="center", va="center", fontsize=8, wrap=True,
                    transform=ax.transAxes)
            continue
        for v in np.unique(p["labels"]):
            sel = p["labels"] == v
            ax.scatter(*p["xy"][sel].T, s=7, color=cmap(int(v) % cmap.N), alpha=0.6, linewidths=0,
                       label=value_names[int(v)] if 0 <= v < len(value_names) else str(v))
        if len(p["top_xy"]):
            ax.scatter(*np.asarray(p["top_xy"]).T, s=60, facecolors="none", linewidths=1.5,
                       edgecolors=["tab:green" if r else "tab:red" for r in p["top_relevant"]])
        ax.scatter(*p["query_xy"], s=160, marker="*", color="black", label="query")
        x0, x1, y0, y1 = p["limits"]
        ax.set(xlim=(x0, x1), ylim=(y0, y1))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(p.get("xlabel", "PC 1"), fontsize=8)
        ax.set_ylabel(p.get("ylabel", "PC 2"), fontsize=8)
    handles, labels = [], []
    for ax in axes[0]:
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in labels:
                handles.append(h)
                labels.append(l)
    if handles:
        fig.legend(handles, labels, loc="center right", fontsize=7, markerscale=1.5, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig
