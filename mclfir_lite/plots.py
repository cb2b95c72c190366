"""Figures: forgetting curves, the accuracy matrix, and a grid of retrieved neighbours.

Every function draws onto matplotlib axes it is given (or makes a figure) and returns
the figure, so notebooks, widgets and the headless demo share them.
"""
from __future__ import annotations

import numpy as np


def _plt():
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


def plot_forgetting_curves(results: dict[str, dict], attribute: str | None = None, ax=None):
    """Per-attribute mAP across increments, one panel line per strategy.

    ``results``: ``{strategy: result dict}`` as the runner returns. With ``attribute``
    the curve of that attribute; otherwise the mean over the attributes seen so far.
    """
    plt = _plt()
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5, 3.5))
    for name, res in results.items():
        R = np.array([[np.nan if v is None else v for v in row] for row in res["map_matrix"]], dtype=float)
        if attribute is not None:
            j = res["attributes"].index(attribute)
            y = R[:, j]
        else:
            y = np.nanmean(R, axis=1)
        ax.plot(np.arange(1, len(y) + 1), y, marker="o", label=name)
    ax.set_xlabel("after increment")
    ax.set_ylabel(f"mAP ({attribute})" if attribute else "mean mAP over seen attributes")
    ax.set_xticks(np.arange(1, len(y) + 1))
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_accuracy_matrix(result: dict, ax=None, title: str | None = None):
    """Heatmap of R[i][j] = mAP on attribute j after increment i (blank: not seen yet)."""
    plt = _plt()
    R = np.array([[np.nan if v is None else v for v in row] for row in result["map_matrix"]], dtype=float)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(1 + 1.1 * R.shape[1], 1 + 0.7 * R.shape[0]))
    ax.imshow(np.ma.masked_invalid(R), vmin=0, vmax=1, cmap="viridis")
    for i in range(R.shape[0]):
        for j in range(R.shape[1]):
            if not np.isnan(R[i, j]):
                ax.text(j, i, f"{R[i, j]:.2f}", ha="center", va="center",
                        color="white" if R[i, j] < 0.6 else "black", fontsize=8)
    ax.set_xticks(range(R.shape[1]), result["attributes"], rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(R.shape[0]), [f"inc {i + 1}" for i in range(R.shape[0])], fontsize=8)
    ax.set_title(title or result.get("strategy", ""), fontsize=9)
    return fig


def plot_strategies(results: dict[str, dict]):
    """Accuracy matrices of several strategies side by side."""
    plt = _plt()
    n = len(results)
    first = next(iter(results.values()))
    fig, axes = plt.subplots(1, n, figsize=(1.2 + 1.0 * len(first["attributes"]) * n, 2.8), squeeze=False)
    for ax, (name, res) in zip(axes[0], results.items()):
        plot_accuracy_matrix(res, ax=ax, title=name)
    fig.tight_layout()
    return fig


def plot_neighbours(query_image: np.ndarray, neighbour_images: list[np.ndarray], relevant: list[bool],
                    title: str = "", captions: list[str] | None = None, axes=None):
    """The query, then its top-k neighbours framed green (relevant) or red (not)."""
    plt = _plt()
    k = len(neighbour_images)
    if axes is None:
        fig, axes = plt.subplots(1, k + 1, figsize=(1.3 * (k + 1), 1.7))
    fig = axes[0].figure
    axes[0].imshow(query_image)
    axes[0].set_title("query", fontsize=8)
    for ax, img, rel, cap in zip(axes[1:], neighbour_images, relevant, captions or [""] * k):
        ax.imshow(img)
        for spine in ax.spines.values():
            spine.set_edgecolor("tab:green" if rel else "tab:red")
            spine.set_linewidth(3)
        ax.set_title(cap, fontsize=7)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].set_ylabel(title, fontsize=8)
    return fig
