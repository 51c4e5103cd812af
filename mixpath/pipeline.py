"""The whole job in one call: supernet -> NSGA-II search -> the found architecture and three baselines of
equal cost retrained from scratch -> one table, a verdict computed from it, report.html and the model to keep.

A search earns its keep only if what it finds beats what needs no search, trained the same way. So the
architecture the search picks (the most accurate on the front within a FLOPs budget) is retrained from
scratch beside three baselines, all with one recipe and seed (or the same few seeds, ``retrain_seeds``) on the
whole training split, and measured on the test split:

    found      the most accurate front architecture within the budget (the search runs under the budget too)
    random     a random architecture with FLOPs within 5 % of the found one's (the supernet's sampling rule)
    smallest   every layer its cheapest single path (e3:k3 everywhere on the mbconv spaces)
    params     the architecture with the most parameters within the budget (parameter count alone)

The FLOPs budget is ``max_flops`` when given, else the median FLOPs of architectures sampled the way the
supernet sampled them (``mixpath.baselines.median_flops``). Why that default: it is fixed before the search
from the space alone, so the results cannot move it; without a budget "most accurate on the front" mostly
means "largest" (accuracy grows with FLOPs), which compares big with small, not search with no search; and
at the median half of the space fits, so the search has room and a random architecture of equal FLOPs is
easy to draw. A budget below the space's smallest architecture fails before anything is trained.

What the run folder holds after it, besides each stage's own files (config, checkpoint, search-nsga2/)::

    retrain/<role>/       found, random, smallest, params: model.pt/.pt2/.json, metrics.csv, curves.png, result.json
    retrained.json, .csv  one row per role: role, arch, flops, params, supernet_score, val_acc, test_acc,
                          train_seconds, epochs
    export/               the found architecture's retrained model (model.pt, model.pt2 on raw pixels, model.json)
    pipeline.json         budget and its rule, recipe, rows, verdict, timings and where everything is
    report.html           the run on one page

Every stage resumes: with ``resume=True`` a killed pipeline continues where it stopped, and a finished one
trains and scores nothing again.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import statistics
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mixpath.baselines import (
    BUDGET_DRAWS,
    EQUAL_FLOPS_TOLERANCE,
    check_budget,
    median_flops,
    params_pick,
    random_equal_flops,
    uniform_smallest,
)
from mixpath.checks import check_processes, check_whole_number
from mixpath.data import load_data
from mixpath.errors import MixPathError
from mixpath.evaluation import CalibrationSettings, CostModel
from mixpath.io import read_json, write_csv, write_json
from mixpath.pipeline_scale import FULL, RETRAIN_EPOCHS, RETRAIN_LABEL_SMOOTHING, RETRAIN_LR, SUPERNET_EPOCHS
from mixpath.reporting.html import (
    EXPORT_DIR,
    PIPELINE_FILE,
    REPORT_FILE,
    RETRAIN_DIR,
    RETRAINED_FILE,
    write_html_report,
)
from mixpath.retraining import (
    RESULT_FILE,
    FolderHoldsAnotherRetraining,
    RetrainEntry,
    format_table,
    retrain_architectures,
)
from mixpath.runlock import locking_run_folder
from mixpath.search import EvaluatedArch, SearchConfig
from mixpath.spaces import load_space_file
from mixpath.spaces.space_file import load_run_spaces
from mixpath.training import Recipe, Run, TrainConfig, load_run, train_supernet
from mixpath.training.chance import untrained_warning
from mixpath.training.trainer import CONFIG_FILE, run_space
from mixpath.workflow import choose_under_budget, export_retrained, search_supernet, supernet_evaluator

log = logging.getLogger("mixpath.pipeline")

SEED_NOISE_POINTS = 0.5
"""Test-accuracy points within which one seed cannot tell two retrained Fashion-MNIST models apart: two seeds of
one fmnist-s1 architecture differ by this much on average (the ranking study's ground truth: 0.47 points at 2
epochs over 12 architectures, 0.69 at 4, 0.45 at 8 over 22). On a test split of fewer than 200 images one image
weighs more than that, so the verdict's noise floor is the larger of this and one test image (100 / test images
points). A mean over n seeds per role divides it by the square root of n."""
RETRAIN_RECIPE = Recipe(epochs=RETRAIN_EPOCHS, lr=RETRAIN_LR, label_smoothing=RETRAIN_LABEL_SMOOTHING)
"""What every retraining of the pipeline follows (``mixpath.pipeline_scale``: why these numbers)."""
ROLES = {
    "found": "most accurate on the search front within the FLOPs budget",
    "random": f"random, FLOPs within {EQUAL_FLOPS_TOLERANCE:.0%} of the found one",
    "smallest": "every layer its cheapest single path",
    "params": "most parameters within the FLOPs budget",
}
"""The retrained architectures: role (also its folder under RUN/retrain) -> how it was chosen."""
RETRAINED_COLUMNS = ("role", "arch", "flops", "params", "supernet_score", "val_acc", "test_acc", "train_seconds")
TABLE_HEADERS = {
    "role": "role",
    "flops": "FLOPs (M MACs)",
    "params": "params (M)",
    "supernet_score": "supernet score (%)",
    "test_acc": "test acc (%)",
    "train_seconds": "train (s)",
}
RETRAINED_CSV = "retrained.csv"


@locking_run_folder
def run_pipeline(
    run_dir: Path | str,
    train_config: TrainConfig | None = None,
    search_config: SearchConfig = SearchConfig(budget=FULL.budget, population=FULL.population),
    recipe: Recipe = RETRAIN_RECIPE,
    *,
    max_flops: float | None = None,
    retrain_subset: int | None = None,
    algo: str = "nsga2",
    calibration: CalibrationSettings = CalibrationSettings(),
    resume: bool = False,
    allow_untrained: bool = False,
    progress: bool = True,
    device: str = "auto",
    space_file: Path | str | None = None,
    processes: int | None = None,
    retrain_seeds: int = 1,
) -> dict[str, Any]:
    """Run the whole job into ``run_dir`` (see the module docstring) and return its summary, as pipeline.json.

    ``max_flops``: the FLOPs budget in M multiply-adds (default: the median rule above); the search runs
    under it as a constraint. ``retrain_subset``: retrain on only this many training images. With
    ``resume=True`` every stage continues what ``run_dir`` holds, using its saved training settings; a
    ``train_config`` given then is compared with them as ``train_supernet`` does (the settings a run may
    change are applied, any other difference refused). Without one a new run trains
    ``TrainConfig(epochs=SUPERNET_EPOCHS)``.
    A supernet whose sampled subnets stay near chance accuracy (``mixpath.training.chance``) stops the job
    before the search with a MixPathError saying what to change, since searching it would rank noise;
    ``allow_untrained=True`` logs the warning and goes on (a smoke run's supernet learns nothing).
    ``space_file``: the Python file declaring the space, as for ``train_supernet`` (which keeps a copy).
    ``processes``: how many of the four retrain at a time on the CPU (``retrain_architectures``; default one per
    core). ``retrain_seeds``: each of the four is retrained with this many seeds (the run's seed, +1, ...); the
    table then shows their means, and the verdict's noise floor shrinks as one over the square root of it.
    """
    run_dir = Path(run_dir)
    check_processes("processes", processes)
    check_whole_number("retrain_seeds", retrain_seeds)
    started = time.perf_counter()
    load_run_spaces(run_dir)
    if space_file is not None:
        load_space_file(space_file)
    resume_training = resume and (run_dir / CONFIG_FILE).exists()
    if resume_training:
        planned = TrainConfig.from_json(read_json(run_dir / CONFIG_FILE), run_dir / CONFIG_FILE)
    else:
        planned = train_config if train_config is not None else TrainConfig(epochs=SUPERNET_EPOCHS)
    space = run_space(planned)
    cost = CostModel(space)
    if max_flops is not None:
        check_budget(space, max_flops, cost)
        budget, rule = float(max_flops), "given"
    else:
        budget = median_flops(space, planned.m, cost)
        rule = f"median of {BUDGET_DRAWS} architectures sampled with m={planned.m}, fixed before the search"
    log.info("FLOPs budget: %.2f M multiply-adds (%s)", budget, rule)

    trained = train_supernet(
        train_config if resume_training else planned,
        run_dir,
        resume=resume_training,
        device=device,
        progress=progress,
        space_file=space_file,
    )
    trained_at = time.perf_counter()
    warning = untrained_warning(run_dir)
    if warning is not None and not allow_untrained:
        raise MixPathError(f"{warning}. To search it anyway: --allow-untrained (allow_untrained=True)")
    if warning is not None:
        log.warning("warning: %s", warning)
    constrained = dataclasses.replace(search_config, constraints={**search_config.constraints, "flops": budget})
    result, search_dir = search_supernet(
        run_dir, algo, constrained, calibration=calibration, resume=resume, progress=progress, device=device
    )
    searched_at = time.perf_counter()

    run = load_run(run_dir, device)
    entries = choose_contenders(run, result.front, budget, calibration)
    chosen_at = time.perf_counter()

    dataset = load_data(
        run.config.data,
        run.config.data_dir,
        val_size=run.config.val_size,
        split_seed=run.config.seed,
        train_subset=retrain_subset,
        image_size=run.space.input_shape[1] if run.config.data == "imagefolder" else None,
        workers=run.config.workers,
        skip_bad_images=run.config.skip_bad_images,
    )
    retrain_root = run_dir / RETRAIN_DIR
    seeds = [run.config.seed + k for k in range(retrain_seeds)]
    runs = [
        dataclasses.replace(entry, name=entry.name if k == 0 else f"{entry.name}-seed{seed}", seed=seed)
        for entry in entries
        for k, seed in enumerate(seeds)
    ]  # the first seed's folders are named by role alone, as with one seed
    try:
        table = retrain_architectures(
            space, dataset, runs, recipe, retrain_root, device=run.device, progress=progress, processes=processes
        )
    except FolderHoldsAnotherRetraining as err:
        raise MixPathError(
            f"{err.folder} holds another retraining ({err.changes}): to retrain the roles with the new settings, "
            f"delete {retrain_root} (the supernet, search and baselines stay) and resume, or start a new run folder"
        ) from None
    columns = RETRAINED_COLUMNS + (("seeds", "test_acc_sd") if retrain_seeds > 1 else ())
    rows = [{key: row.get(key) for key in columns} | {"epochs": recipe.epochs} for row in seed_means(table)]
    write_json(run_dir / RETRAINED_FILE, rows)
    write_csv(run_dir / RETRAINED_CSV, rows)
    retrained_at = time.perf_counter()

    export_paths, _ = export_retrained(
        retrain_root / "found", run_dir / EXPORT_DIR, export_program=True, overwrite=True
    )  # the pipeline's own export: a resumed pipeline writes it again
    noise = max(SEED_NOISE_POINTS / math.sqrt(retrain_seeds), 100.0 / len(dataset.test))
    summary = {
        "run": str(run_dir),
        "training": trained.last,
        "search": {
            "algorithm": algo,
            "evaluated": len(result.evaluated),
            "front": len(result.front),
            "results": str(search_dir),
            "plot": str(search_dir / "front.png"),
        },
        "budget": {"max_flops": budget, "rule": rule},
        "retraining": {
            "recipe": dataclasses.asdict(recipe),
            "seed": run.config.seed,
            "seeds": seeds,
            "train_images": len(dataset.train),
            "test_images": len(dataset.test),
        },
        "roles": ROLES,
        "rows": rows,
        "verdict": verdict(rows, noise, recipe.epochs, retrain_seeds),
        "files": {
            "table": str(run_dir / RETRAINED_CSV),
            "rows": str(run_dir / RETRAINED_FILE),
            "report": str(run_dir / REPORT_FILE),
            "model": str(run_dir / EXPORT_DIR),
            "export": [str(path) for path in export_paths],
            "retrained": str(retrain_root),
        },
        "seconds": {
            "training": round(trained_at - started, 1),
            "search": round(searched_at - trained_at, 1),
            "baselines": round(chosen_at - searched_at, 1),
            "retraining": round(retrained_at - chosen_at, 1),
            "export": round(time.perf_counter() - retrained_at, 1),
        },
    }
    write_json(run_dir / PIPELINE_FILE, summary)
    write_html_report(run_dir)
    return summary


def choose_contenders(
    run: Run,
    front: Sequence[EvaluatedArch],
    max_flops: float,
    calibration: CalibrationSettings = CalibrationSettings(),
) -> list[RetrainEntry]:
    """The four architectures to retrain (``ROLES``, in order), each with its supernet score: the calibrated
    validation accuracy the search's evaluator gives it (the cache in the run folder answers for the found one),
    so the table shows what the supernet thought of the baselines too. The random draw is seeded by the run."""
    cost = CostModel(run.space)
    found = choose_under_budget(front, max_flops)
    archs = {
        "found": found.arch,
        "random": random_equal_flops(run.space, run.config.m, found.metrics["flops"], cost, run.config.seed),
        "smallest": uniform_smallest(run.space, cost),
        "params": params_pick(run.space, run.config.m, max_flops, cost),
    }
    scores = supernet_evaluator(run, calibration, cost).evaluate(list(archs.values()))
    return [
        RetrainEntry(role, arch, role=role, supernet_score=round(score["accuracy"], 3))
        for (role, arch), score in zip(archs.items(), scores, strict=True)
    ]


def retrained_found(run_dir: Path | str) -> Path | None:
    """The folder of the pipeline's found architecture retrained from scratch, when that retraining finished."""
    folder = Path(run_dir) / RETRAIN_DIR / "found"
    return folder if (folder / RESULT_FILE).is_file() else None


def comparison_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The retrained table as aligned lines, then every role's architecture and how it was chosen."""
    width = max(len(str(row["role"])) for row in rows)
    headers = dict(TABLE_HEADERS)
    if any("test_acc_sd" in row for row in rows):  # several seeds per role: their spread, before the time
        headers = {k: v for k, v in headers.items() if k != "train_seconds"} | {
            "test_acc_sd": "sd (seeds)",
            "train_seconds": headers["train_seconds"],
        }
    lines = format_table(rows, headers)
    for row in rows:
        lines.append(f"{row['role']:<{width}}  {row['arch']}  ({ROLES.get(row['role'], 'given')})")
    return lines


def seed_means(table: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per role, in the order roles first appear: the first seed's row with validation and test
    accuracy and training time averaged over the role's seeds, and, for several seeds, their count and the
    sample standard deviation of the test accuracy."""
    by_role: dict[str, list[Mapping[str, Any]]] = {}
    for row in table:
        by_role.setdefault(row["role"], []).append(row)
    rows = []
    for group in by_role.values():
        row = dict(group[0]) | {
            key: round(statistics.fmean(r[key] for r in group), 3) for key in ("val_acc", "test_acc", "train_seconds")
        }
        if len(group) > 1:
            row |= {"seeds": len(group), "test_acc_sd": round(statistics.stdev(r["test_acc"] for r in group), 3)}
        rows.append(row)
    return rows


def verdict(rows: Sequence[Mapping[str, Any]], noise: float, epochs: int, seeds: int = 1) -> str:
    """One line saying, from the test accuracies alone (each a mean of ``seeds`` retrainings), whether the found
    architecture beat each baseline.

    A difference within ``noise`` points either way is a tie: that many seeds cannot separate it from chance. A
    baseline that is the found architecture itself is named as such, not counted as a tie.
    """
    by_role = {row["role"]: row for row in rows}
    found = by_role["found"]
    others = [role for role in by_role if role != "found"]
    same = [role for role in others if by_role[role]["arch"] == found["arch"]]
    gap = {role: found["test_acc"] - by_role[role]["test_acc"] for role in others if role not in same}
    beats = [role for role, points in gap.items() if points >= noise]
    loses = [role for role, points in gap.items() if points <= -noise]
    ties = [role for role in gap if role not in beats and role not in loses]
    clauses = []
    if loses:
        clauses.append("the search lost to " + ", ".join(f"{r} by {-gap[r]:.2f} points" for r in loses))
    if beats and len(beats) == len(others):
        clauses.append(f"the found architecture beats all {len(others)} baselines by >= {min(gap.values()):.2f} points")
    elif beats:
        clauses.append("the found architecture beats " + ", ".join(f"{r} by {gap[r]:.2f} points" for r in beats))
    if ties:
        clauses.append("it ties with " + ", ".join(f"{r} ({gap[r]:+.2f})" for r in ties))
    if same:
        clauses.append(f"{' and '.join(same)} picked the found architecture itself")
    return (
        "; ".join(clauses) + f" (test accuracy after {epochs} retraining epoch{'s' if epochs != 1 else ''}, "
        f"{'one seed' if seeds == 1 else f'mean of {seeds} seeds'}: differences below {noise:.2g} points are "
        "within seed noise)"
    )
