"""Ground truth for ranking: architectures that span a space, trained from scratch or looked up in a table.

``stratified_sample`` draws architectures so the set covers the space: equal shares per bin of mean
path count (the first bin holds exactly the single-path architectures, so single-path supernets can be
ranked on a subset), and within a bin equal shares per FLOPs quantile of a candidate pool.

``build_ground_truth`` trains each architecture with one fixed recipe (``mixpath.training.standalone``)
and appends one CSV line per finished architecture (``mixpath.io.append_line``), so a killed run continues
where it stopped: rows already in the file (same architecture and seed) are skipped, and a torn last line
left by a kill is dropped. A training under way checkpoints after every epoch into a folder beside the CSV
(``<name>.checkpoints/``) and a killed run resumes it there, to the same row (the batches of an epoch depend
only on the seed and the epoch), so a kill costs at most one epoch; the checkpoint is deleted once its row is
written. Every architecture is trained with the same seed (same initialisation stream, batch
order and augmentation: common random numbers), so a row depends only on (architecture, seed, recipe).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mixpath.checks import check_whole_number
from mixpath.data import Data
from mixpath.errors import MixPathError
from mixpath.evaluation import CostModel
from mixpath.io import append_line, read_lines
from mixpath.runlock import file_lock
from mixpath.spaces import Architecture, LayerChoice, SearchSpace
from mixpath.supernet import build_standalone
from mixpath.training.recipe import Recipe
from mixpath.training.seeding import step_rng
from mixpath.training.side_by_side import run_side_by_side, side_by_side_processes
from mixpath.training.standalone import init_seed, train_standalone

log = logging.getLogger(__name__)

COLUMNS = ("arch", "val_acc", "test_acc", "flops", "params", "seconds", "seed")
TARGETS = ("test", "val")
DRAWS_PER_POOL_PLACE = 20
"""Draws tried per place of a bin's candidate pool before the bin counts as too small: a draw is wasted when it
repeats an architecture or its mean path count falls outside the bin."""


@dataclass(frozen=True)
class GroundTruthRow:
    """One architecture's stand-alone result: accuracies in percent, FLOPs (multiply-adds) and params in
    millions, training seconds, and the training seed (-1 for a benchmark table's mean over its seeds)."""

    arch: str
    val_acc: float
    test_acc: float
    flops: float
    params: float
    seconds: float
    seed: int

    def accuracy(self, target: str) -> float:
        return self.test_acc if target == "test" else self.val_acc


def path_bins(m: int) -> list[tuple[float, float]]:
    """Bins of mean path count: ``(1, 1)`` exactly single-path, then ``(k, k + 1]`` for k = 1..m-1."""
    return [(1.0, 1.0)] + [(float(k), float(k + 1)) for k in range(1, m)]


def bin_of(mean_paths: float, bins: Sequence[tuple[float, float]]) -> int:
    for index, (low, high) in enumerate(bins):
        if (low == high == mean_paths) or (low < mean_paths <= high):
            return index
    raise MixPathError(f"mean path count {mean_paths} is in no bin of {list(bins)}")


def mean_paths(arch: Architecture) -> float:
    return sum(arch.path_counts) / len(arch.path_counts)


def _draw_in_bin(space: SearchSpace, rng: random.Random, low: float, high: float, m: int) -> Architecture:
    """A random architecture whose mean path count is (almost always) in ``(low, high]``: per layer the
    path count is floor or ceil of a target drawn uniformly in the bin, mixed to hit the target on average."""
    target = low if low == high else rng.uniform(low, high)
    layers = []
    for spec in space.layers:
        top = min(m, spec.n_ops)
        base = min(int(math.floor(target)), top)
        k = min(base + (1 if rng.random() < target - math.floor(target) else 0), top)
        options = {key: rng.choice(values) for key, values in spec.options}
        layers.append(LayerChoice.of(rng.sample(spec.ops, max(1, k)), **options))
    return Architecture(tuple(layers))


def stratified_sample(
    space: SearchSpace,
    n: int,
    m: int,
    seed: int = 0,
    flops: Callable[[Architecture], float] | None = None,
    flops_bins: int = 2,
    pool_factor: int = 8,
) -> list[Architecture]:
    """``n`` distinct architectures of ``space`` (up to ``m`` paths per layer), stratified over mean path
    count and FLOPs; the same arguments give the same list. ``flops(arch)`` defaults to the cost model."""
    check_whole_number("number of architectures", n)
    m = space.check_m(m)
    if n > space.size(m):
        raise MixPathError(f"{n} architectures asked for, but {space.name} has {space.size(m)} with m={m}")
    if flops is None:
        costs = CostModel(space)
        flops = lambda arch: costs(arch)["flops"]  # noqa: E731
    rng = step_rng(seed, "groundtruth-sample", space.name, m)
    bins = path_bins(m)
    quotas = [n // len(bins) + (1 if i < n % len(bins) else 0) for i in range(len(bins))]
    chosen: list[Architecture] = []
    seen: set[Architecture] = set()
    for (low, high), quota in zip(bins, quotas, strict=True):
        if quota == 0:
            continue
        pool: list[Architecture] = []
        for _ in range(pool_factor * quota * DRAWS_PER_POOL_PLACE):
            if len(pool) >= pool_factor * quota:
                break
            arch = _draw_in_bin(space, rng, low, high, m)
            if arch not in seen and bin_of(mean_paths(arch), bins) == bins.index((low, high)):
                seen.add(arch)
                pool.append(arch)
        if len(pool) < quota:
            raise MixPathError(
                f"space {space.name!r} has too few architectures with mean path count in ({low}, {high}] for {quota}"
            )
        values = np.array([flops(arch) for arch in pool])
        edges = np.quantile(values, np.linspace(0, 1, flops_bins + 1)[1:-1])
        strata = [
            [a for a, v in zip(pool, values, strict=True) if np.searchsorted(edges, v) == s] for s in range(flops_bins)
        ]
        for stratum in strata:
            rng.shuffle(stratum)
        picked = 0
        while picked < quota:
            for stratum in strata:
                if stratum and picked < quota:
                    chosen.append(stratum.pop())
                    picked += 1
    return chosen


class GroundTruthFile:
    """The ground-truth CSV, read back and appended one durable line at a time (``mixpath.io.append_line``)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def read(self) -> list[GroundTruthRow]:
        """Every complete row (a torn last line, from a killed write, is left out)."""
        lines = read_lines(self.path)
        reader = csv.DictReader(lines)
        if lines and tuple(reader.fieldnames or ()) != COLUMNS:
            raise MixPathError(f"{self.path} is not a ground-truth CSV: its columns must be {', '.join(COLUMNS)}")
        rows = []
        for number, line in enumerate(reader, start=2):
            if None in line or None in line.values():  # more cells than columns, or fewer
                raise MixPathError(f"{self.path} line {number} is malformed: {line}")
            try:
                rows.append(
                    GroundTruthRow(
                        line["arch"],
                        float(line["val_acc"]),
                        float(line["test_acc"]),
                        float(line["flops"]),
                        float(line["params"]),
                        float(line["seconds"]),
                        int(line["seed"]),
                    )
                )
            except (TypeError, ValueError):
                raise MixPathError(f"{self.path} line {number} is malformed: {line}") from None
            if not all(math.isfinite(getattr(rows[-1], key)) for key in COLUMNS[1:]):
                raise MixPathError(f"{self.path} line {number} holds a number that is not finite: {line}")
        return rows

    def append(self, row: GroundTruthRow) -> None:
        """Append ``row`` (writing the header first into a new file)."""
        append_line(self.path, _csv_line([getattr(row, key) for key in COLUMNS]), header=_csv_line(COLUMNS))


def _csv_line(values: Sequence[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()[:-1]


def build_ground_truth(
    space: SearchSpace,
    dataset: Data,
    archs: Sequence[Architecture],
    recipe: Recipe,
    out: Path | str,
    *,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
    limit: int | None = None,
    processes: int | None = None,
    checkpoints: Path | str | None = None,
) -> list[GroundTruthRow]:
    """Train every architecture of ``archs`` not yet in ``out`` (for this seed) and append its row.

    On the CPU the architectures train side by side, ``processes`` at a time (default: one per core, one
    thread each on 2 cores; ``mixpath.training.side_by_side``), the most FLOPs first; each row is appended as
    its training ends, so a killed run loses only the trainings under way. A row depends on the thread count
    its training had (float rounding), not on which process trained it. ``limit`` stops after training that
    many architectures in this call (running in chunks; how the tests interrupt a run). ``checkpoints``: the
    folder of the trainings' checkpoints (default ``<out's stem>.checkpoints`` beside ``out``; several CSVs of
    one study can share one, since a checkpoint is named by what it trains). Returns the rows of ``out`` for
    ``archs`` and this seed, in the order of ``archs``.
    """
    space.check_data(dataset.input_shape, dataset.num_classes, dataset.name)
    out = Path(out)
    folder = Path(checkpoints) if checkpoints is not None else out.parent / f"{out.stem}.checkpoints"
    with file_lock(out):
        file = GroundTruthFile(out)
        done = {(row.arch, row.seed) for row in file.read()}
        costs = CostModel(space)
        texts = [space.format(arch) for arch in archs]
        first = {text: i for i, text in reversed(list(enumerate(texts)))}  # an arch listed twice trains once
        todo = sorted(i for text, i in first.items() if (text, seed) not in done)
        todo = todo[:limit] if limit is not None else todo
        side_by_side = side_by_side_processes(processes, len(todo), device)

        def train(index: int) -> GroundTruthRow:
            init_seed(seed)
            model = build_standalone(space, archs[index])
            label = f"arch {index + 1}/{len(archs)}" if side_by_side > 1 else None
            checkpoint = training_checkpoint(folder, texts[index], seed, recipe, dataset)
            folder.mkdir(parents=True, exist_ok=True)
            result = train_standalone(
                model,
                dataset,
                recipe,
                seed=seed,
                device=device,
                progress=progress,
                label=label,
                checkpoint_path=checkpoint,
            )
            assert result is not None  # it trains to the end without stop_after_epochs
            cost = costs(archs[index])
            flops, params = round(cost["flops"], 4), round(cost["params"], 5)
            return GroundTruthRow(
                texts[index], result["val_acc"], result["test_acc"], flops, params, result["seconds"], seed
            )

        if side_by_side > 1:
            longest_first = sorted(todo, key=lambda index: -costs(archs[index])["flops"])
            finished = run_side_by_side(train, longest_first, side_by_side)
        else:
            finished = ((index, train(index)) for index in todo)
        for index, row in finished:
            file.append(row)
            training_checkpoint(folder, row.arch, seed, recipe, dataset).unlink(missing_ok=True)
            log.info(
                "ground truth %d/%d: %s val %.2f%% test %.2f%%",
                index + 1,
                len(archs),
                row.arch,
                row.val_acc,
                row.test_acc,
            )
        rows = [row for row in file.read() if row.seed == seed and row.arch in first]
        return sorted(rows, key=lambda row: first[row.arch])


def training_checkpoint(folder: Path | str, arch: str, seed: int, recipe: Recipe, dataset: Data) -> Path:
    """Where ``build_ground_truth`` checkpoints the training of ``arch`` in ``folder``: named by a hash of
    everything the row depends on (architecture, seed, recipe, data set and its split sizes), so a checkpoint
    of another recipe or data set is never resumed by mistake."""
    key = {
        "arch": arch,
        "seed": seed,
        "recipe": dataclasses.asdict(recipe),
        "data": [dataset.name, len(dataset.train), len(dataset.val), len(dataset.test)],
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return Path(folder) / f"{digest}.pt"


def benchmark_ground_truth(
    name: str, n: int, out: Path | str, *, seed: int = 0, path: str | Path | None = None
) -> list[GroundTruthRow]:
    """Ground truth of ``n`` stratified architectures looked up in benchmark table ``name`` (nb201, or
    nb101 with ``path``): the table's mean over its seeds (seed -1), its training time as seconds."""
    from mixpath.benchmarks_nas import load_benchmark_evaluator

    space, evaluator = load_benchmark_evaluator(name, "val", path)
    archs = stratified_sample(space, n, 1, seed, flops=lambda arch: evaluator.costs(arch)["flops"])
    with file_lock(out):
        file = GroundTruthFile(out)
        done = {row.arch for row in file.read()}
        for arch, metrics in zip(archs, evaluator.evaluate(archs), strict=True):
            text = space.format(arch)
            if text in done:
                continue
            file.append(
                GroundTruthRow(
                    text,
                    metrics["val_accuracy"],
                    metrics["test_accuracy"],
                    round(metrics["flops"], 4),
                    round(metrics["params"], 5),
                    round(metrics["cost_seconds"], 2),
                    -1,
                )
            )
        return [row for row in file.read() if row.arch in {space.format(a) for a in archs}]


def load_ground_truth(path: Path | str) -> dict[str, GroundTruthRow]:
    """Rows by architecture string; an architecture with rows of several seeds gets their mean accuracies
    (and the first row's seed)."""
    rows = GroundTruthFile(path).read()
    if not rows:
        raise MixPathError(f"{path} holds no ground truth (missing or empty)")
    by_arch: dict[str, list[GroundTruthRow]] = {}
    for row in rows:
        by_arch.setdefault(row.arch, []).append(row)
    merged = {}
    for arch, group in by_arch.items():
        first = group[0]
        merged[arch] = GroundTruthRow(
            arch,
            float(np.mean([r.val_acc for r in group])),
            float(np.mean([r.test_acc for r in group])),
            first.flops,
            first.params,
            float(np.sum([r.seconds for r in group])),
            first.seed,
        )
    return merged
