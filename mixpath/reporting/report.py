"""``report``: the feature analysis of a trained multi-path run, as numbers (report.json) and PNG plots.

Everything is computed from the run's trained weights and statistics: the SBN ratios read the running
statistics from training (no calibration); the similarity matrices use a batch of validation images
fed through a fixed, seeded architecture up to each layer; the one-shot accuracies are scored with the
chosen BN calibration through the run's evaluation cache.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from mixpath.evaluation import CalibrationSettings, SupernetEvaluator
from mixpath.io import write_json
from mixpath.reporting.features import (
    layer_inputs,
    multipath_layers,
    oneshot_accuracies,
    path_similarity,
    sbn_summary,
    shadow_bn_statistics,
)
from mixpath.reporting.plots import heatmap, histograms, layer_lines
from mixpath.runlock import run_lock
from mixpath.training import load_run
from mixpath.training.seeding import step_rng

log = logging.getLogger(__name__)

REPORT_DIR = "report"


def _similarity_section(run: Any, images: int, seed: int, out: Path) -> dict[str, Any]:
    supernet, space, m = run.supernet, run.space, run.supernet.m
    x = next(iter(run.dataset.val.batches(images)))[0].to(run.device)
    arch = space.random_architecture(step_rng(seed, "report-arch"), m)
    inputs = layer_inputs(supernet, arch, x)
    layers = []
    for index, (layer, x_in) in enumerate(zip(multipath_layers(supernet), inputs, strict=True)):
        labels, matrix = path_similarity(layer, x_in, m)
        n_single = layer.spec.n_ops
        singles = matrix[:n_single, :n_single][~np.eye(n_single, dtype=bool)]
        layers.append(
            {
                "layer": index,
                "labels": labels,
                "matrix": np.round(matrix, 4).tolist(),
                "mean_single_path_cosine": float(singles.mean()),
                "mean_cosine": float(matrix[~np.eye(len(labels), dtype=bool)].mean()),
            }
        )
    for entry in (layers[0], layers[len(layers) // 2], layers[-1]):
        heatmap(
            np.array(entry["matrix"]),
            entry["labels"],
            out / f"cosine_layer{entry['layer']}.png",
            f"cosine similarity of path outputs, layer {entry['layer']}, smallest expansion",
        )
    layer_lines(
        {
            "single paths": [e["mean_single_path_cosine"] for e in layers],
            "all path sets": [e["mean_cosine"] for e in layers],
        },
        out / "cosine_by_layer.png",
        "mean cosine similarity",
        "similarity of path outputs per layer",
    )
    return {"images": len(x), "input_arch": space.format(arch), "layers": layers}


def _sbn_section(run: Any, out: Path) -> dict[str, Any]:
    if run.config.bn_policy != "shadow" or run.supernet.m < 2:
        return {"skipped": f"needs bn_policy shadow and m >= 2 (run has {run.config.bn_policy}, m={run.supernet.m})"}
    entries = shadow_bn_statistics(run.supernet)
    nan = {"median": float("nan"), "cosine": float("nan")}
    layer_lines(
        {
            "mu(SBN_1)/mu(SBN_2), median": [e["mu_ratio"].get("1/2", nan)["median"] for e in entries],
            "var(SBN_1)/var(SBN_2), median": [e["var_ratio"].get("1/2", nan)["median"] for e in entries],
            "gamma cosine SBN_1 vs SBN_2": [e["gamma"].get("1/2", nan)["cosine"] for e in entries],
        },
        out / "sbn_ratios.png",
        "ratio / cosine",
        "Shadow BN statistics per (layer, expansion); paper: 0.5 and 0.25",
    )
    return {"summary": sbn_summary(entries), "layers": entries}


def _oneshot_section(run: Any, n_archs: int, calibration: CalibrationSettings, seed: int, out: Path) -> dict[str, Any]:
    evaluator = SupernetEvaluator(
        run.supernet, run.dataset, calibration=calibration, cache_path=run.run_dir / "report_cache.jsonl"
    )
    accuracies = oneshot_accuracies(evaluator, run.space, range(1, run.supernet.m + 1), n_archs, seed)
    histograms(
        {f"m={m}": values for m, values in accuracies.items()},
        out / "oneshot_accuracy_hist.png",
        "one-shot validation accuracy (%)",
        f"{n_archs} random architectures per path limit m (calibration {calibration.mode})",
    )
    return {
        "calibration": calibration.mode,
        "archs_per_m": n_archs,
        "by_m": {
            str(m): {
                "mean": float(np.mean(v)),
                "std": float(np.std(v)),
                "min": float(np.min(v)),
                "max": float(np.max(v)),
                "accuracies": [round(a, 3) for a in v],
            }
            for m, v in accuracies.items()
        },
    }


def run_report(
    run_dir: Path | str,
    out_dir: Path | str | None = None,
    *,
    images: int = 256,
    n_archs: int = 50,
    calibration: CalibrationSettings = CalibrationSettings(),
    seed: int = 0,
    device: str = "cpu",
) -> dict[str, Any]:
    """Write report.json and PNGs for the run in ``run_dir`` to ``out_dir`` (default ``RUN/report``).

    The run folder (the one-shot scores are cached in its report_cache.jsonl) and ``out_dir`` are both locked
    meanwhile (``mixpath.runlock``): ``out_dir`` may lie outside the run, where another report could be
    writing the same files."""
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / REPORT_DIR
    with run_lock(run_dir), run_lock(out):
        run = load_run(run_dir, device)
        report = {
            "run": str(run_dir),
            "space": run.space.name,
            "m": run.supernet.m,
            "bn_policy": run.config.bn_policy,
            "sbn": _sbn_section(run, out),
            "similarity": _similarity_section(run, images, seed, out),
        }
        write_json(out / "report.json", report)
        report["oneshot"] = _oneshot_section(run, n_archs, calibration, seed, out)
        write_json(out / "report.json", report)
    log.info("report of %s written to %s", run_dir, out)
    return report
