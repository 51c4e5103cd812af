"""``RUN/report.html``: what a run folder holds, on one page a person can open from the folder, offline.

A section appears for each stage the folder has results of (only config.json is required): the settings,
the supernet's training curves, each search (Pareto plot, hypervolume, front table), the exported model,
the architectures retrained from scratch, the ranking against a ground truth, the feature analysis, any
other figure, and a link to every file. Figures are PNGs inside the page and links are relative to the
folder, so the page still works when the folder is copied or archived. Nothing here is slow: the page
reads results and draws small plots; it never loads the supernet or scores an architecture.
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mixpath.errors import MixPathError
from mixpath.io import read_json, write_text
from mixpath.ranking.rank import RANKING_DIR, estimate_of
from mixpath.reporting.page import (
    MISSING,
    PNG_MAGIC,
    Html,
    document,
    element,
    facts,
    figure_png,
    figures,
    image,
    join,
    link,
    number,
    table,
)
from mixpath.reporting.plots import ranking_scatter
from mixpath.reporting.report import REPORT_DIR
from mixpath.runlock import locking_run_folder
from mixpath.training.trainer import CONFIG_FILE, LOG_FILE, METRICS_FILE

REPORT_FILE = "report.html"
PIPELINE_FILE = "pipeline.json"
"""``mixpath pipeline``'s summary: the FLOPs budget and its rule, the retraining recipe, the verdict."""
RETRAINED_FILE = "retrained.json"
"""A list of retrained rows (see ``_RETRAIN_COLUMNS``); without it, ``retrain/<name>/result.json`` files."""
RETRAIN_DIR = "retrain"
EXPORT_DIR = "export"

_PLAIN = "{:.4g}"
"""How a number without a known unit is shown."""
_METRICS = {
    "accuracy": ("accuracy", "{:.2f} %"),
    "flops": ("FLOPs (M multiply-adds)", "{:.2f} M"),
    "params": ("params", "{:.3f} M"),
    "latency": ("latency", "{:.2f} ms"),
    "loss": ("loss", "{:.4f}"),
}
_EPOCH_COLUMNS = {
    "epoch": ("epoch", "{:.0f}"),
    "train_loss": ("train loss", "{:.4f}"),
    "train_acc": ("train accuracy", "{:.2f} %"),
    "val_acc_sampled": ("val accuracy, sampled subnets", "{:.2f} %"),
    "lr": ("learning rate", "{:.4g}"),
    "seconds": ("time", "{:.1f} s"),
    "images_per_s": ("images/s", "{:.0f}"),
}
_RANKING_METRICS = {"kendall_tau": "Kendall tau", "spearman_rho": "Spearman rho"}
_RETRAIN_COLUMNS = {
    "flops": ("FLOPs (M multiply-adds)", "{:.2f} M"),
    "params": ("params", "{:.3f} M"),
    "supernet_score": ("supernet score", "{:.2f} %"),
    "val_acc": ("val accuracy", "{:.2f} %"),
    "test_acc": ("test accuracy", "{:.2f} %"),
    "test_acc_sd": ("sd over seeds", "{:.2f}"),
    "seeds": ("seeds", "{:.0f}"),
    "epochs": ("epochs", "{:.0f}"),
}
_SEVERAL_SEEDS = ("test_acc_sd", "seeds")
"""Columns of a pipeline retrained with several seeds per role: shown only when a row has them."""


class _Folder:
    """The run folder a page is written for: links relative to it, and which of its PNGs the page shows."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.shown: set[Path] = set()

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def link(self, path: Path) -> Html:
        return link(self.relative(path), self.relative(path))

    def links(self, paths: Iterable[Path]) -> Html:
        """'files: a, b' for those of ``paths`` that exist (nothing when none does)."""
        found = [self.link(path) for path in paths if path.is_file()]
        return element("p", "files: ", Html(", ".join(found)), cls="note") if found else Html("")

    def picture(self, path: Path, caption: str | None = None) -> Html:
        """An existing PNG file inside the page (nothing when it is missing or not a PNG)."""
        if not path.is_file() or path in self.shown:
            return Html("")
        png = path.read_bytes()
        if not png.startswith(PNG_MAGIC):
            return Html("")
        self.shown.add(path)
        return image(png, caption or self.relative(path))

    def files(self) -> list[Path]:
        """Every file of the run, sorted; hidden ones (temporary files of atomic writes) and the page left out."""
        return sorted(
            path
            for path in self.root.rglob("*")
            if path.is_file()
            and not any(part.startswith(".") for part in path.relative_to(self.root).parts)
            and path != self.root / REPORT_FILE
        )


@locking_run_folder
def write_html_report(run_dir: Path | str) -> Path:
    """Write ``RUN/report.html`` for any run folder (one holding config.json) and return its path; the folder
    is locked while the page reads it and is written there (``mixpath.runlock``)."""
    root = Path(run_dir)
    if not (root / CONFIG_FILE).is_file():
        raise MixPathError(f"{root} is not a mixpath run folder (no {CONFIG_FILE}); train one with `mixpath train`")
    path = root / REPORT_FILE
    write_text(path, render_html_report(root))
    return path


def render_html_report(run_dir: Path | str) -> str:
    """The page for ``run_dir`` as a string (``write_html_report`` writes it into the folder)."""
    folder = _Folder(Path(run_dir).resolve())
    config = read_json(folder.root / CONFIG_FILE)
    if not isinstance(config, dict):
        raise MixPathError(f"{folder.root / CONFIG_FILE} does not hold training settings")
    epochs = _read_csv(folder.root / METRICS_FILE)
    body = [
        element("h1", f"Run {folder.root.name}"),
        element("p", _headline(config, len(epochs))),
        element("p", f"Written {datetime.now():%Y-%m-%d %H:%M} from {folder.root}.", cls="note"),
        _settings(folder, config),
        _training(folder, config, epochs),
        _searches(folder),
        _export(folder),
        _retrained(folder),
        _rankings(folder),
        _analysis(folder),
        _other_figures(folder),
        _files(folder),
    ]
    return document(f"{folder.root.name}: mixpath run report", body)


def _headline(config: Mapping[str, Any], epochs_done: int) -> str:
    return (
        f"Space {config.get('space', MISSING)} on {config.get('data', MISSING)}, strategy "
        f"{config.get('strategy', MISSING)} with m={config.get('m', MISSING)} and "
        f"{config.get('bn_policy', MISSING)} BN; {epochs_done} of {config.get('epochs', MISSING)} epochs trained."
    )


def _settings(folder: _Folder, config: Mapping[str, Any]) -> Html:
    rows = [(name, _as_text(value)) for name, value in config.items()]
    return join(
        [
            element("h2", "Settings"),
            facts(rows, per_row=3),
            folder.links([folder.root / CONFIG_FILE]),
        ]
    )


def _training(folder: _Folder, config: Mapping[str, Any], rows: Sequence[Mapping[str, str]]) -> Html:
    """The training curves and a summary of the last epoch, from metrics.csv's ``rows``."""
    parts: list[object] = [element("h2", "Supernet training")]
    if not rows:
        parts.append(_note("No epoch has finished yet: metrics.csv gets a line at the end of each epoch."))
    else:
        last = rows[-1]
        seconds = sum(_float(row.get("seconds")) or 0.0 for row in rows)
        parts.append(
            element(
                "p",
                f"{len(rows)} of {config.get('epochs', MISSING)} epochs in {_duration(seconds)}. Last epoch: "
                f"train loss {number(last.get('train_loss'), '{:.4f}')}, "
                f"train accuracy {number(last.get('train_acc'), '{:.2f} %')}, "
                f"validation accuracy of {config.get('eval_archs', 'a few')} sampled subnets "
                f"{number(last.get('val_acc_sampled'), '{:.2f} %')} (trained BN statistics, no calibration), "
                f"{number(last.get('images_per_s'), '{:.0f}')} images/s.",
            )
        )
        if len(rows) > 1:
            parts.append(image(_training_figure(rows), "supernet training per epoch"))
        else:  # one point per panel, on an axis matplotlib can only invent
            parts.append(_note("One epoch so far: no curves to draw; its row is in the table below."))
        columns = list(rows[0])
        formats = [_EPOCH_COLUMNS.get(name, (name, _PLAIN)) for name in columns]
        epochs = table(
            [header for header, _ in formats],
            ([number(row.get(name), fmt) for name, (_, fmt) in zip(columns, formats, strict=True)] for row in rows),
            numeric=range(len(columns)),
        )
        summary = f"metrics of all {len(rows)} epochs" if len(rows) > 1 else "metrics of the epoch"
        parts.append(element("details", element("summary", summary), epochs))
    parts.append(folder.links([folder.root / METRICS_FILE, folder.root / LOG_FILE, folder.root / "checkpoint.pt"]))
    return join(parts)


def _searches(folder: _Folder) -> Html:
    directories = sorted(path for path in folder.root.glob("search-*") if path.is_dir())
    if not directories:
        return join([element("h2", "Search"), _note("No search yet: `mixpath search RUN --algo nsga2`.")])
    return join(_search(folder, directory) for directory in directories)


def _search(folder: _Folder, directory: Path) -> Html:
    info = read_json(directory / "history.json") if (directory / "history.json").is_file() else {}
    generations = info.get("generations", [])
    search_config = info.get("config", {})
    parts: list[object] = [element("h2", f"Search: {info.get('algorithm', directory.name)} ({directory.name})")]
    summary = {
        "space, m": f"{info.get('space', MISSING)}, m={info.get('m', MISSING)}",
        "objectives": ", ".join(search_config.get("objectives", [])) or MISSING,
        "constraints": _as_text(search_config.get("constraints", {})),
        "budget, population, seed": ", ".join(
            str(search_config.get(key, MISSING)) for key in ("budget", "population", "seed")
        ),
        "hypervolume reference": _as_text(info.get("reference", {})),
    }
    if generations:
        first, last = generations[0], generations[-1]
        summary["evaluated"] = f"{last.get('evaluated', MISSING)} architectures in {len(generations)} generations"
        summary["Pareto front"] = f"{last.get('front_size', MISSING)} architectures"
        summary["hypervolume"] = (
            f"{number(first.get('hypervolume'), '{:.4g}')} → {number(last.get('hypervolume'), '{:.4g}')}"
        )
        if _float(last.get("score_seconds")):  # wall-clock time in the evaluator (histories before it: none)
            summary["scoring time"] = _duration(_float(last.get("score_seconds")))
        if _float(last.get("cost_seconds")):  # a benchmark table's training time of the queried architectures
            summary["queried training time"] = _duration(_float(last.get("cost_seconds")))
    parts.append(facts(summary.items(), per_row=2))
    parts.append(
        figures(
            folder.picture(directory / "front.png", f"{folder.relative(directory)}: evaluated architectures and front"),
            image(_hypervolume_figure(generations), "hypervolume of the front after each generation")
            if len(generations) > 1
            else Html(""),
        )
    )
    if (directory / "front.json").is_file():
        parts.append(element("h3", "Pareto front"))
        parts.append(_front_table(read_json(directory / "front.json")))
    names = ("front.csv", "front.json", "evaluated.csv", "evaluated.json", "history.json", "front.png")
    parts.append(folder.links(directory / name for name in names))
    return join(parts)


def _front_table(entries: Sequence[Mapping[str, Any]]) -> Html:
    names = list(dict.fromkeys(name for entry in entries for name in entry.get("metrics", {})))
    names = [name for name in _METRICS if name in names] + [
        n for n in names if n not in _METRICS and n != "cost_seconds"
    ]
    formats = [_METRICS.get(name, (name, _PLAIN)) for name in names]
    rows = [
        [
            i + 1,
            element("code", entry.get("arch", MISSING)),
            *(number(entry.get("metrics", {}).get(name), fmt) for name, (_, fmt) in zip(names, formats, strict=True)),
            entry.get("generation", MISSING),
        ]
        for i, entry in enumerate(entries)
    ]
    headers = ["#", "architecture", *(header for header, _ in formats), "generation"]
    return table(headers, rows, numeric={0, *range(2, len(headers))})


def _export(folder: _Folder) -> Html:
    directory = folder.root / EXPORT_DIR
    parts: list[object] = [element("h2", "Exported model")]
    model = directory / "model.pt"
    if not model.is_file():
        parts.append(_note("Nothing exported yet: `mixpath export RUN` writes the best architecture of the front."))
        return join(parts)
    try:
        bundle = torch.load(model, map_location="cpu", weights_only=True, mmap=True)
    except (OSError, RuntimeError, ValueError) as err:
        raise MixPathError(f"cannot read {model}: {err}") from None
    metrics = bundle.get("metrics", {})
    summary: dict[str, object] = {"architecture": element("code", bundle.get("arch", MISSING))}
    summary |= {"space, BN policy": f"{bundle.get('space', MISSING)}, {bundle.get('bn_policy', MISSING)}"}
    for name, value in metrics.items():
        header, pattern = _METRICS.get(name, (name, _PLAIN))
        summary[header] = number(value, pattern)
    parts.append(facts(summary.items()))
    parts.append(folder.links(sorted(directory.iterdir())))
    return join(parts)


def _retrained(folder: _Folder) -> Html:
    parts: list[object] = [element("h2", "Retrained from scratch")]
    summary = folder.root / RETRAINED_FILE
    if summary.is_file():
        rows = read_json(summary)
        sources: list[Path | None] = [None] * len(rows) if isinstance(rows, list) else []
    else:
        files = sorted((folder.root / RETRAIN_DIR).glob("*/result.json"))
        rows, sources = [read_json(path) for path in files], list(files)
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise MixPathError(f"{summary if summary.is_file() else RETRAIN_DIR} does not hold retrained architectures")
    if not rows:
        parts.append(_note("Not retrained yet: no retrained.json and no retrain/<name>/result.json in this run."))
        return join(parts)
    several = any(key in row for row in rows for key in _SEVERAL_SEEDS)
    columns = {k: v for k, v in _RETRAIN_COLUMNS.items() if several or k not in _SEVERAL_SEEDS}
    headers = ["role", "architecture", *(h for h, _ in columns.values()), "training time", "result"]
    cells = [
        [
            row.get("role", MISSING),
            element("code", row.get("arch", MISSING)),
            *(number(row.get(key), fmt) for key, (_, fmt) in columns.items()),
            _duration(_float(row.get("train_seconds"))),
            folder.link(source) if source is not None else MISSING,
        ]
        for row, source in zip(rows, sources, strict=True)
    ]
    parts.append(
        element(
            "p",
            "Each architecture trained from scratch with the same recipe; the found one should beat the "
            "baselines of equal cost. The supernet score is its one-shot validation accuracy.",
        )
    )
    parts.append(_pipeline_summary(folder))
    parts.append(table(headers, cells, numeric=range(2, len(headers) - 1)))
    plotted = [row for row in rows if _float(row.get("flops")) is not None and _float(row.get("test_acc")) is not None]
    comparison = image(_retrained_figure(plotted), "test accuracy against FLOPs, by role") if len(plotted) > 1 else ""
    curves = [
        folder.picture(path) for source in sources if source is not None for path in sorted(source.parent.glob("*.png"))
    ]
    parts.append(figures(Html(comparison), *curves))
    parts.append(folder.links([summary]))
    return join(parts)


def _pipeline_summary(folder: _Folder) -> Html:
    """The verdict, the FLOPs budget with its rule, the recipe and how each role was chosen, from
    pipeline.json; nothing for a run that ``mixpath pipeline`` did not finish."""
    path = folder.root / PIPELINE_FILE
    summary = read_json(path) if path.is_file() else None
    if not isinstance(summary, dict):
        return Html("")
    budget, retraining, roles, seconds = (
        _mapping(summary, key) for key in ("budget", "retraining", "roles", "seconds")
    )
    recipe = _mapping(retraining, "recipe")
    items = [
        ("verdict", _as_text(summary.get("verdict", MISSING))),
        (
            "FLOPs budget",
            f"{number(budget.get('max_flops'), '{:.2f} M')} multiply-adds ({budget.get('rule', MISSING)})",
        ),
        (
            "recipe",
            f"{recipe.get('epochs', MISSING)} epochs, lr {recipe.get('lr', MISSING)}, batch "
            f"{recipe.get('batch_size', MISSING)}, seed {retraining.get('seed', MISSING)}",
        ),
        (
            "images",
            f"{retraining.get('train_images', MISSING)} training, {retraining.get('test_images', MISSING)} test",
        ),
        *((f"role {role}", _as_text(rule)) for role, rule in roles.items()),
        *((f"{stage} time", _duration(_float(value))) for stage, value in seconds.items()),
    ]
    return join([facts(items), folder.links([path])])


def _mapping(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """``parent[key]`` when it is a mapping, else an empty one: a hand-edited summary still renders."""
    value = parent.get(key)
    return value if isinstance(value, dict) else {}


def _rankings(folder: _Folder) -> Html:
    files = sorted((folder.root / RANKING_DIR).glob("ranking_*.json"))
    if not files:
        return join(
            [
                element("h2", "Ranking against a ground truth"),
                _note("No ranking yet: `mixpath rank RUN --ground-truth GT.csv` (after `mixpath groundtruth`)."),
            ]
        )
    return join(_ranking(folder, path) for path in files)


def _ranking(folder: _Folder, path: Path) -> Html:
    result = read_json(path)
    calibration = result.get("calibration", path.stem.removeprefix("ranking_"))
    predictors = result.get("metrics", {})
    metrics = list(next(iter(predictors.values()), {}))
    bootstrap = result.get("bootstrap", {})
    parts: list[object] = [
        element("h2", f"Ranking against a ground truth (BN calibration {calibration})"),
        element(
            "p",
            f"{result.get('n_archs', MISSING)} architectures ranked against their {result.get('target', MISSING)}"
            + (f" from {Path(str(result['ground_truth'])).name}" if "ground_truth" in result else "")
            + f"; each value with its 95 % interval from {bootstrap.get('resamples', MISSING)} bootstrap resamples."
            " FLOPs and params are predictors that cost nothing (bigger = predicted better): the supernet is"
            " worth what it ranks better than they do.",
        ),
        table(
            [
                "predictor",
                *(_RANKING_METRICS.get(name, name.replace("top", "top-") + " precision") for name in metrics),
            ],
            ([name, *(str(estimate_of(result, name, metric)) for metric in metrics)] for name in predictors),
            numeric=range(1, len(metrics) + 1),
        ),
    ]
    png = path.with_suffix(".png")
    caption = f"one-shot against stand-alone accuracy ({calibration})"
    if png.is_file():
        parts.append(folder.picture(png, caption))
    else:
        parts.append(
            image(_drawn(lambda out: ranking_scatter(result, out, f"{folder.root.name} ({calibration})")), caption)
        )
    parts.append(folder.links([path, png]))
    return join(parts)


def _analysis(folder: _Folder) -> Html:
    directory = folder.root / REPORT_DIR
    parts: list[object] = [element("h2", "Feature analysis")]
    if not directory.is_dir():
        parts.append(_note("No feature analysis yet: `mixpath report RUN` (slow: it scores random architectures)."))
        return join(parts)
    if (directory / "report.json").is_file():
        report = read_json(directory / "report.json")
        sbn = report.get("sbn", {})
        if "skipped" in sbn:
            parts.append(_note(f"Shadow BN statistics skipped: {sbn['skipped']}."))
        elif sbn.get("summary"):
            parts.append(element("h3", "Shadow BN statistics (means over layers and expansions)"))
            parts.append(
                table(
                    ["SBN pair k/j", "mean ratio", "expected", "variance ratio", "expected", "gamma cosine"],
                    (
                        [
                            pair,
                            number(s.get("mu_ratio_abs_sum"), "{:.3f}"),
                            number(s.get("expected_mu_ratio"), "{:.3f}"),
                            number(s.get("var_ratio_abs_sum"), "{:.3f}"),
                            number(s.get("expected_var_ratio"), "{:.3f}"),
                            number(s.get("gamma_cosine"), "{:.3f}"),
                        ]
                        for pair, s in sbn["summary"].items()
                    ),
                    numeric=range(1, 6),
                )
            )
        by_m = report.get("oneshot", {}).get("by_m", {})
        if by_m:
            parts.append(element("h3", "One-shot accuracy of random architectures per path limit m"))
            parts.append(
                table(
                    ["m", "architectures", "mean", "std", "min", "max"],
                    (
                        [
                            m,
                            len(s.get("accuracies", [])),
                            *(number(s.get(k), "{:.2f} %") for k in ("mean", "std", "min", "max")),
                        ]
                        for m, s in by_m.items()
                    ),
                    numeric=range(6),
                )
            )
    parts.extend(folder.picture(path) for path in sorted(directory.glob("*.png")))
    parts.append(folder.links(sorted(directory.glob("*.json"))))
    return join(parts)


def _other_figures(folder: _Folder) -> Html:
    pictures = [folder.picture(path) for path in folder.files() if path.suffix == ".png"]
    pictures = [picture for picture in pictures if picture]
    return join([element("h2", "Other figures"), *pictures]) if pictures else Html("")


def _files(folder: _Folder) -> Html:
    rows = [(folder.link(path), _size(path.stat().st_size)) for path in folder.files()]
    return join([element("h2", "Files"), table(["file", "size"], rows, numeric={1})])


def _training_figure(rows: Sequence[Mapping[str, str]]) -> bytes:
    fig = Figure(figsize=(11, 3.2))
    epochs = _floats(row.get("epoch") for row in rows)
    panels = (
        ("loss", {"train loss": "train_loss"}),
        ("accuracy (%)", {"train": "train_acc", "val, sampled subnets": "val_acc_sampled"}),
        ("learning rate (end of epoch)", {"learning rate": "lr"}),
    )
    for i, (ylabel, series) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        for label, column in series.items():
            ax.plot(epochs, _floats(row.get(column) for row in rows), "o-", ms=3, label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if len(series) > 1:
            ax.legend(fontsize=8)
    return figure_png(fig)


def _hypervolume_figure(generations: Sequence[Mapping[str, Any]]) -> bytes:
    fig = Figure(figsize=(5.5, 3.2))
    ax = fig.add_subplot()
    ax.plot(
        _floats(g.get("evaluated") for g in generations), _floats(g.get("hypervolume") for g in generations), "o-", ms=4
    )
    ax.set_xlabel("architectures evaluated")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("hypervolume of the front")
    ax.grid(alpha=0.3)
    return figure_png(fig)


def _retrained_figure(rows: Sequence[Mapping[str, Any]]) -> bytes:
    fig = Figure(figsize=(5.5, 3.6))
    ax = fig.add_subplot()
    for role in dict.fromkeys(str(row.get("role", "unlabelled")) for row in rows):
        chosen = [row for row in rows if str(row.get("role", "unlabelled")) == role]
        ax.scatter(_floats(r["flops"] for r in chosen), _floats(r["test_acc"] for r in chosen), s=30, label=role)
    ax.set_xlabel("FLOPs (M multiply-adds)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return figure_png(fig)


def _drawn(draw: Callable[[Path], object]) -> bytes:
    """PNG bytes of a plot function that writes to a path (those of ``mixpath.reporting.plots``)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "figure.png"
        draw(path)
        return path.read_bytes()


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _note(text: str) -> Html:
    return element("p", text, cls="note")


def _as_text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _floats(values: Iterable[object]) -> np.ndarray:
    """Values as a float array for a plot, a missing or malformed one as NaN (a gap in the line)."""
    return np.array([_float(value) for value in values], dtype=float)


def _float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return MISSING
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def _size(size: float) -> str:
    units = ("B", "kB", "MB", "GB")
    power = 0
    while size >= 1000 and power < len(units) - 1:
        size, power = size / 1000, power + 1
    return f"{size:.0f} B" if power == 0 else f"{size:.1f} {units[power]}"
