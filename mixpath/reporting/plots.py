"""PNG plots of ranking results and of the feature analysis (matplotlib, headless Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig: plt.Figure, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _scatter_axis(ax: plt.Axes, result: Mapping[str, Any], title: str) -> None:
    rows = result["archs"]
    x = [row["standalone_acc"] for row in rows]
    y = [row["supernet_acc"] for row in rows]
    ax.scatter(x, y, s=18, alpha=0.8)
    tau = result["metrics"]["supernet"]["kendall_tau"]
    label = "n/a" if tau["value"] is None else f"{tau['value']:.2f} [{tau['low']:.2f}, {tau['high']:.2f}]"
    ax.set_title(f"{title}\ntau {label}, n={result['n_archs']}", fontsize=9)
    ax.set_xlabel(result["target"] + " (%)", fontsize=8)
    ax.set_ylabel("one-shot val accuracy (%)", fontsize=8)
    ax.tick_params(labelsize=7)


def ranking_scatter(result: Mapping[str, Any], path: Path | str, title: str = "supernet vs stand-alone") -> Path:
    """One-shot accuracy against stand-alone accuracy, one point per architecture, tau in the title."""
    fig, ax = plt.subplots(figsize=(4.5, 4))
    _scatter_axis(ax, result, title)
    return _save(fig, path)


def ranking_scatter_grid(results: Mapping[str, Mapping[str, Any]], path: Path | str, columns: int = 4) -> Path:
    """Scatter plots of several rankings (title -> ``rank_scores`` result) in one figure."""
    rows = max(1, -(-len(results) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 3.3 * rows), squeeze=False)
    for ax, (title, result) in zip(axes.flat, results.items(), strict=False):
        _scatter_axis(ax, result, title)
    for ax in list(axes.flat)[len(results) :]:
        ax.axis("off")
    return _save(fig, path)


def interval_chart(
    labels: Sequence[str], series: Mapping[str, Sequence[tuple[float, float, float]]], path: Path | str, ylabel: str
) -> Path:
    """Grouped point estimates with interval bars: ``series`` name -> (value, low, high) per label."""
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2.5, 4))
    width = 0.8 / max(1, len(series))
    for i, (name, points) in enumerate(series.items()):
        xs = np.arange(len(labels)) + (i - (len(series) - 1) / 2) * width
        values = np.array([p[0] for p in points], dtype=float)
        errors = np.array([[p[0] - p[1], p[2] - p[0]] for p in points], dtype=float).T
        ax.errorbar(xs, values, yerr=errors, fmt="o", capsize=3, label=name)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xticks(np.arange(len(labels)), labels, rotation=20, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return _save(fig, path)


def interval_curves(
    series: Mapping[str, Sequence[tuple[float, float, float, float]]],
    path: Path | str,
    xlabel: str,
    ylabel: str,
    references: Mapping[str, float] | None = None,
    logx: bool = True,
) -> Path:
    """Lines of point estimates with interval bars: ``series`` name -> (x, value, low, high) per point;
    ``references`` name -> y draws labelled horizontal lines (a ceiling, a trivial predictor)."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, points in series.items():
        points = sorted(points)
        xs = np.array([p[0] for p in points], dtype=float)
        values = np.array([p[1] for p in points], dtype=float)
        errors = np.array([[p[1] - p[2], p[3] - p[1]] for p in points], dtype=float).T
        ax.errorbar(xs, values, yerr=errors, fmt="o-", capsize=3, label=name)
    for i, (name, y) in enumerate((references or {}).items()):
        ax.axhline(y, color=f"C{len(series) + i}", ls="--", lw=1, label=name)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def heatmap(matrix: np.ndarray, labels: Sequence[str], path: Path | str, title: str) -> Path:
    """A labelled square matrix (e.g. cosine similarities) with its values written in the cells."""
    fig, ax = plt.subplots(figsize=(0.45 * len(labels) + 2.5, 0.45 * len(labels) + 2))
    image = ax.imshow(matrix, vmin=min(0.0, float(np.nanmin(matrix))), vmax=1.0, cmap="viridis")
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    if len(labels) <= 16:
        for i in range(len(labels)):
            for j in range(len(labels)):
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=5, color="w")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046)
    return _save(fig, path)


def histograms(samples: Mapping[str, Sequence[float]], path: Path | str, xlabel: str, title: str) -> Path:
    """Overlaid histograms, one per named sample (e.g. one-shot accuracies of random archs per m)."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    values = [v for sample in samples.values() for v in sample]
    bins = np.linspace(min(values), max(values), 25).tolist() if values and min(values) < max(values) else 10
    for name, sample in samples.items():
        ax.hist(sample, bins=bins, alpha=0.55, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("architectures")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return _save(fig, path)


def layer_lines(series: Mapping[str, Sequence[float]], path: Path | str, ylabel: str, title: str) -> Path:
    """One line per named per-layer series (e.g. mean mu(SBN_1)/mu(SBN_2) per layer)."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, values in series.items():
        ax.plot(range(len(values)), values, marker="o", label=name)
    ax.set_xlabel("searchable layer")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return _save(fig, path)
