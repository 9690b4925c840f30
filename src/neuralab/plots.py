"""Figures for the labs and for training histories (matplotlib, Agg backend, imported lazily).

Every function draws one PNG file and returns its path; none opens a window, so they work
on servers and in tests.

Example:
    >>> from neuralab import plots
    >>> plots.line_panels([{"title": "loss", "xlabel": "epoch", "ylabel": "loss",
    ...                     "series": {"train": ([0, 1, 2], [1.0, 0.5, 0.3])}}], "loss.png")
    'loss.png'
"""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import numpy as np

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#17becf", "#bcbd22"]


def _pyplot():
    # Import here: matplotlib costs ~0.3 s and is an optional extra ("plot").
    try:
        import matplotlib
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("figures need matplotlib: pip install 'neuralab[plot]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def _grid(n: int, ncols: int | None = None, size: tuple[float, float] = (4.2, 3.4)):
    plt = _pyplot()
    ncols = ncols or min(n, 3)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def save(fig: Any, path: str | os.PathLike, title: str | None = None, dpi: int = 80) -> str:
    """Write a figure to a PNG (small: 80 dpi) and close it. Returns the path as a string.

    Example: ``fig, ax = plt.subplots(); ax.plot([0, 1]); plots.save(fig, "line.png")``
    """
    if title:
        fig.suptitle(title, fontsize=12, fontweight="bold")
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    _pyplot().close(fig)
    if str(path).lower().endswith(".png"):
        # 256 colours are plenty for line charts and make the PNG ~3x smaller (docs keep them).
        from PIL import Image  # matplotlib's own dependency
        with Image.open(path) as im:
            small = im.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
        small.save(path, optimize=True)
    return str(path)


def line_panels(panels: Sequence[dict], path: str | os.PathLike, title: str | None = None,
                ncols: int | None = None) -> str:
    """One line chart per panel.

    Each panel is a dict with ``title``, ``xlabel``, ``ylabel``, ``series`` (label ->
    (x, y), or (x, y, style) with a matplotlib format like ``"--"``), and optionally
    ``logy`` / ``logx`` (log axes), ``ylim``, ``hline`` (a dashed reference value, with an
    optional ``hline_label`` written on it), ``legend`` (default: when there are several
    series) and ``legend_loc``. A panel with ``kind="bar"``
    is drawn as in ``bar_panels``.

    Example: ``line_panels([{"title": "t", "xlabel": "x", "ylabel": "y", "series": {...}}], "a.png")``
    """
    fig, axes = _grid(len(panels), ncols)
    for ax, p in zip(axes, panels):
        if p.get("kind") == "bar":  # a bar panel among line panels (see bar_panels)
            _bars(ax, p)
            continue
        for i, (label, xy) in enumerate(p["series"].items()):
            style = xy[2] if len(xy) > 2 else "-"
            x, y = np.asarray(xy[0], float), np.asarray(xy[1], float)
            marker = "o" if len(x) <= 25 else None
            ax.plot(x, y, style, label=label, color=COLORS[i % len(COLORS)], marker=marker,
                    markersize=3, linewidth=1.6)
        if p.get("logx"):
            ax.set_xscale("log")
        _style_axes(ax, p)
        ax.grid(True, alpha=0.3, which="both" if p.get("logy") else "major")
        if p.get("legend", len(p["series"]) > 1):
            ax.legend(fontsize=7, loc=p.get("legend_loc", "best"))
    return save(fig, path, title)


def bar_panels(panels: Sequence[dict], path: str | os.PathLike, title: str | None = None,
               ncols: int | None = None) -> str:
    """Grouped bar charts: each panel has ``title``, ``ylabel``, ``groups`` (x tick labels)
    and ``bars`` (label -> one value per group; NaN draws no bar); optional ``logy``, ``ylim``
    and ``annotate`` (a format such as ``".2f"``: write each value over its bar, "n/a" for NaN).

    Example: ``bar_panels([{"title": "acc", "ylabel": "accuracy", "groups": ["a", "b"],
    "bars": {"train": [1, .9], "test": [.8, .85]}}], "acc.png")``
    """
    fig, axes = _grid(len(panels), ncols, size=(5.0, 3.6))
    for ax, p in zip(axes, panels):
        _bars(ax, p)
    return save(fig, path, title)


def _bars(ax: Any, p: dict) -> None:
    """Draw one grouped bar chart panel (see bar_panels) on ``ax``."""
    groups = list(p["groups"])
    k = len(p["bars"])
    width = 0.8 / k
    x = np.arange(len(groups))
    for i, (label, values) in enumerate(p["bars"].items()):
        values = np.asarray(values, float)
        xs = x + (i - (k - 1) / 2) * width
        ax.bar(xs, np.nan_to_num(values), width, label=label, color=COLORS[i % len(COLORS)])
        if p.get("annotate"):  # the value over each bar; "n/a" where it does not apply (NaN)
            for xi, v in zip(xs, values):
                ax.text(xi, 0 if np.isnan(v) else v, " n/a" if np.isnan(v) else " " + format(v, p["annotate"]),
                        ha="center", va="bottom", fontsize=6.5, rotation=90)
    rotation = p.get("rotation", 20)
    ax.set_xticks(x)
    ax.set_xticklabels(groups, rotation=rotation, ha="right" if rotation else "center", fontsize=8)
    _style_axes(ax, p)
    ax.grid(True, axis="y", alpha=0.3)
    if k > 1:
        ax.legend(fontsize=7, loc=p.get("legend_loc", "best"))


def _style_axes(ax: Any, p: dict) -> None:
    """Apply a line or bar panel's ``logy``, ``ylim``, ``hline``/``hline_label`` and labels."""
    if p.get("logy"):
        ax.set_yscale("log")
    if "ylim" in p:
        ax.set_ylim(*p["ylim"])
    if "hline" in p:
        ax.axhline(p["hline"], color="gray", linestyle=":", linewidth=1)
        if p.get("hline_label"):  # say what the reference line means, right on it
            ax.annotate(p["hline_label"], (0.01, p["hline"]), xycoords=("axes fraction", "data"),
                        xytext=(0, 2), textcoords="offset points", fontsize=7, color="dimgray")
    ax.set_title(p.get("title", ""), fontsize=10)
    ax.set_xlabel(p.get("xlabel", ""))
    ax.set_ylabel(p.get("ylabel", ""))


def decision_boundaries(panels: Sequence[dict], path: str | os.PathLike, title: str | None = None,
                        ncols: int | None = None, resolution: int = 150) -> str:
    """Decision regions of 2-D classifiers with their data points.

    Each panel has ``title``, ``predict`` (a function from an (n, 2) array to class labels),
    ``X`` (n, 2) and ``y`` (n,).

    Example: ``decision_boundaries([{"title": "XOR", "predict": clf.predict, "X": X, "y": y}], "b.png")``
    """
    from matplotlib.colors import ListedColormap
    fig, axes = _grid(len(panels), ncols, size=(3.6, 3.4))
    cmap = ListedColormap(["#aec7e8", "#ffbb78"])
    for ax, p in zip(axes, panels):
        X, y = np.asarray(p["X"], float), np.asarray(p["y"])
        pad = 0.25 * (X.max(axis=0) - X.min(axis=0)) + 0.1
        lo, hi = X.min(axis=0) - pad, X.max(axis=0) + pad
        g0, g1 = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
        grid = np.column_stack([g0.ravel(), g1.ravel()])
        z = np.asarray(p["predict"](grid), float).reshape(g0.shape)
        ax.contourf(g0, g1, z, levels=[-0.5, 0.5, 1.5], cmap=cmap, alpha=0.8)
        for cls, color, marker in ((0, "#1f77b4", "o"), (1, "#d62728", "s")):
            m = y == cls
            ax.scatter(X[m, 0], X[m, 1], c=color, marker=marker, s=p.get("s", 40 if len(X) < 20 else 8),
                       edgecolors="k", linewidths=0.5, label=f"class {cls}")
        ax.set_title(p.get("title", ""), fontsize=10)
        ax.set_xlabel(p.get("xlabel", "$x_1$"))
        ax.set_ylabel(p.get("ylabel", "$x_2$"))
        ax.legend(fontsize=7, loc=p.get("legend_loc", "upper right"))
    return save(fig, path, title)


def contour_paths(f: Callable[[np.ndarray, np.ndarray], np.ndarray], paths: dict[str, np.ndarray],
                  xlim: tuple[float, float], ylim: tuple[float, float], path: str | os.PathLike,
                  title: str | None = None, xlabel: str = "$w_1$", ylabel: str = "$w_2$",
                  minimum: tuple[float, float] | None = None) -> str:
    """Contours of a 2-D loss surface with optimisation trajectories drawn over it.

    Example: ``contour_paths(lambda a, b: a**2 + 10*b**2, {"SGD": traj}, (-2, 2), (-1, 1), "p.png")``
    """
    fig, (ax,) = _grid(1, size=(6.4, 4.8))
    a, b = np.meshgrid(np.linspace(*xlim, 300), np.linspace(*ylim, 300))
    z = f(a, b)
    levels = np.quantile(z, np.linspace(0.0, 0.95, 25) ** 2)
    cs = ax.contour(a, b, z, levels=np.unique(levels), cmap="viridis", linewidths=0.8)
    fig.colorbar(cs, ax=ax, label="loss")
    for i, (label, pts) in enumerate(paths.items()):
        pts = np.asarray(pts)
        ax.plot(pts[:, 0], pts[:, 1], "-o", color=COLORS[(i + 1) % len(COLORS)], markersize=2,
                linewidth=1.4, label=f"{label} ({len(pts) - 1} steps)")
    ax.plot(*np.asarray(next(iter(paths.values())))[0], "k^", markersize=8, label="start")
    if minimum is not None:
        ax.plot(*minimum, "k*", markersize=12, label="minimum")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, loc="lower right")
    return save(fig, path, title)


def scatter_panels(panels: Sequence[dict], path: str | os.PathLike, title: str | None = None,
                   ncols: int | None = None) -> str:
    """Scatter plots: each panel has ``title``, ``xlabel``, ``ylabel``, ``points``
    (label -> (x, y)), optional ``logx``/``logy`` and ``background`` (a function f(x, y)
    drawn as filled contours over ``xlim``/``ylim``).

    Example: ``scatter_panels([{"title": "grid", "points": {"trials": (x, y)}}], "s.png")``
    """
    fig, axes = _grid(len(panels), ncols, size=(4.4, 3.8))
    for ax, p in zip(axes, panels):
        if "background" in p:
            xs = np.geomspace(*p["xlim"], 200) if p.get("logx") else np.linspace(*p["xlim"], 200)
            ys = np.geomspace(*p["ylim"], 200) if p.get("logy") else np.linspace(*p["ylim"], 200)
            gx, gy = np.meshgrid(xs, ys)
            cf = ax.contourf(gx, gy, p["background"](gx, gy), levels=20, cmap="Greys_r", alpha=0.6)
            ax.figure.colorbar(cf, ax=ax, label=p.get("background_label", ""))
        for i, (label, (x, y)) in enumerate(p["points"].items()):
            ax.scatter(x, y, s=p.get("s", 25), color=COLORS[i % len(COLORS)], edgecolors="k",
                       linewidths=0.4, label=label, zorder=3)
        if p.get("logx"):
            ax.set_xscale("log")
        if p.get("logy"):
            ax.set_yscale("log")
        ax.set_title(p.get("title", ""), fontsize=10)
        ax.set_xlabel(p.get("xlabel", ""))
        ax.set_ylabel(p.get("ylabel", ""))
        ax.legend(fontsize=7, loc=p.get("legend_loc", "best"))
    return save(fig, path, title)
