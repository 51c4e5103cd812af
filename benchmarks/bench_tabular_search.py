"""Search algorithms on NAS-Bench-201 (CIFAR-10) as a table: validation accuracy to search, test to report.

    python benchmarks/bench_tabular_search.py                     # 20 seeds x 200 queries, ~1 minute
    python benchmarks/bench_tabular_search.py --seeds 5 --budget 100 --out /tmp/nb201

Each algorithm runs once per seed (seeds 0..n-1) with a fresh ``TableEvaluator``; a query is one new
architecture (searchers never evaluate one twice). After every query the incumbent is the evaluated
architecture with the best validation accuracy (first found on ties); what is reported is its
validation and *test* accuracy, as in the NAS-Bench-201 paper. Prints mean +- std over seeds at the
``--report`` budgets and writes, under ``--out``:

    nb201_tabular_search.csv    per algorithm and query count: mean/std of the incumbent's accuracies
    nb201_tabular_search.json   settings, the table's optimum, final numbers per algorithm and seed
    nb201_tabular_search.png    anytime curves (mean +- std band), validation and test

The committed results (benchmarks/results/) come from the default command; its printed table is
nb201_tabular_search.txt there. ``train h`` is the benchmark's training time of everything queried.

Settings, fixed before the first run: population 10 (REA's), evolution keeps the top 5 and mutates
each of the 6 edges with probability 1/6 (one edge on average, like REA's single-edge mutation);
nsga2 uses the same population and mutation and optimises (accuracy, FLOPs); random search draws
uniformly from the 15,625 cells.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mixpath.benchmarks_nas import NB201, TableEvaluator, nb201_table  # noqa: E402
from mixpath.benchmarks_nas.tables import BenchmarkTable  # noqa: E402
from mixpath.search import SearchConfig, make_searcher  # noqa: E402

ALGORITHMS = ("evolution", "random", "nsga2")
OUT = Path(__file__).parent / "results"


def anytime(records: Sequence) -> list[tuple[float, float, float]]:
    """Per query: (validation, test accuracy of the incumbent, cumulative training seconds)."""
    curve, best, seconds = [], None, 0.0
    for record in records:
        seconds += record.metrics["cost_seconds"]
        if best is None or record.metrics["val_accuracy"] > best.metrics["val_accuracy"]:
            best = record
        curve.append((best.metrics["val_accuracy"], best.metrics["test_accuracy"], seconds))
    return curve


def run(table: BenchmarkTable, algorithm: str, seed: int, budget: int) -> list[tuple[float, float, float]]:
    evaluator = TableEvaluator("nb201", table, metric="val")
    config = SearchConfig(
        objectives=("accuracy", "flops"), budget=budget, population=10, top_k=5, mutation_prob=1 / 6, seed=seed
    )
    result = make_searcher(algorithm).run(NB201, 1, evaluator, config, cost_model=evaluator.costs)
    if evaluator.queries != budget:
        raise RuntimeError(f"{algorithm} seed {seed}: {evaluator.queries} queries, expected {budget}")
    return anytime(result.evaluated)


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="runs per algorithm, seeds 0..n-1")
    parser.add_argument("--budget", type=int, default=200, help="queries per run")
    parser.add_argument("--report", default="50,100,200", help="query counts to print")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the CSV, JSON and PNG")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    report = [b for b in (int(x) for x in args.report.split(",")) if b <= args.budget]

    start = time.perf_counter()
    table = nb201_table()
    best_val_key = max(table.rows, key=lambda key: table.rows[key].val_accuracy)
    optimum = {
        "best_validation_arch": best_val_key,
        "its_validation": table.rows[best_val_key].val_accuracy,
        "its_test": table.rows[best_val_key].test_accuracy,
        "best_test_in_table": max(row.test_accuracy for row in table.rows.values()),
    }
    curves = {name: [run(table, name, seed, args.budget) for seed in range(args.seeds)] for name in ALGORITHMS}
    elapsed = time.perf_counter() - start

    print(
        f"NAS-Bench-201 CIFAR-10 table, {args.seeds} seeds x {args.budget} queries per algorithm "
        f"({elapsed:.0f} s); incumbent = best validation accuracy so far; mean +- std over seeds"
    )
    print(
        f"table optimum by validation: val {optimum['its_validation']:.2f}, test {optimum['its_test']:.2f} "
        f"(best test of any cell: {optimum['best_test_in_table']:.2f})"
    )
    header = f"{'algorithm':<10}" + "".join(f"{f'test @{b}':>17}{f'val @{b}':>17}" for b in report)
    print(header + f"{'train h @' + str(args.budget):>14}")
    print("-" * (len(header) + 14))
    summary = {}
    for name, runs in curves.items():
        line = f"{name:<10}"
        summary[name] = {}
        for b in report:
            val = _mean_std([c[b - 1][0] for c in runs])
            test = _mean_std([c[b - 1][1] for c in runs])
            line += f"{test[0]:>10.2f} +- {test[1]:.2f}{val[0]:>10.2f} +- {val[1]:.2f}"
            summary[name][str(b)] = {"test_mean": test[0], "test_std": test[1], "val_mean": val[0], "val_std": val[1]}
        hours = statistics.mean(c[-1][2] for c in runs) / 3600
        print(line + f"{hours:>14.1f}")
        summary[name]["final_test_per_seed"] = [c[-1][1] for c in runs]
        summary[name]["training_hours_mean"] = hours

    args.out.mkdir(parents=True, exist_ok=True)
    _write_csv(args.out / "nb201_tabular_search.csv", curves, args.budget)
    settings = {
        "command": "python benchmarks/bench_tabular_search.py "
        + f"--seeds {args.seeds} --budget {args.budget} --report {args.report}",
        "seeds": args.seeds,
        "budget": args.budget,
        "population": 10,
        "evolution_top_k": 5,
        "mutation_prob": 1 / 6,
        "nsga2_objectives": ["accuracy", "flops"],
    }
    (args.out / "nb201_tabular_search.json").write_text(
        json.dumps({"settings": settings, "optimum": optimum, "results": summary}, indent=2) + "\n"
    )
    _plot(args.out / "nb201_tabular_search.png", curves, optimum, args.seeds)


def _write_csv(path: Path, curves: dict[str, list], budget: int) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["algorithm", "queries", "val_mean", "val_std", "test_mean", "test_std", "hours_mean"])
        for name, runs in curves.items():
            for q in range(budget):
                val = _mean_std([c[q][0] for c in runs])
                test = _mean_std([c[q][1] for c in runs])
                hours = statistics.mean(c[q][2] for c in runs) / 3600
                writer.writerow([name, q + 1, *(f"{v:.4f}" for v in (*val, *test, hours))])


def _plot(path: Path, curves: dict[str, list], optimum: dict, seeds: int) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    for column, (ax, label, key) in enumerate(
        zip(axes, ("validation", "test"), ("its_validation", "its_test"), strict=True)
    ):
        for name, runs in curves.items():
            stats = [_mean_std([c[q][column] for c in runs]) for q in range(len(runs[0]))]
            x = range(1, len(stats) + 1)
            mean = [m for m, _ in stats]
            ax.plot(x, mean, label=name)
            ax.fill_between(x, [m - s for m, s in stats], [m + s for m, s in stats], alpha=0.15)
        ax.axhline(optimum[key], color="k", ls="--", lw=1, label="optimum (best validation cell)")
        ax.set_xlabel("queries (architectures evaluated)")
        ax.set_ylabel(f"{label} accuracy of the incumbent (%)")
        ax.set_ylim(89.0, 92.0)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right")
    fig.suptitle(f"NAS-Bench-201 CIFAR-10: search on validation accuracy, mean +- std over {seeds} seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
