"""Hypervolume reached by nsga2, evolution and random search at equal evaluation budgets, over seeds.

    python benchmarks/bench_search.py                                  # synthetic problem, cifar-s1, m=4
    python benchmarks/bench_search.py --budget 400 --seeds 5 --constraint flops=400
    python benchmarks/bench_search.py --run runs/x                     # a trained supernet's evaluator

Every run of one comparison is scored against one reference point so the numbers compare: per
objective the worst value that any run evaluated (lowest accuracy, highest FLOPs), unless
``--reference`` sets it. ``compare`` takes any function that builds an evaluator (and optional cost
model), so the same table can be made for a supernet, a benchmark table or a toy problem.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from mixpath.search import CostFunction, Evaluator, SearchConfig, SearchResult, make_searcher
from mixpath.search.objectives import MAXIMISED
from mixpath.search.synthetic import SyntheticEvaluator
from mixpath.spaces import SearchSpace, get_space

ALGORITHMS = ("nsga2", "evolution", "random")
Problem = Callable[[], tuple[Evaluator, CostFunction | None]]


def compare(
    build: Problem,
    space: SearchSpace,
    m: int,
    config: SearchConfig,
    seeds: Sequence[int],
    algorithms: Sequence[str] = ALGORITHMS,
) -> dict[str, list[tuple[SearchResult, float]]]:
    """Run every algorithm once per seed on a freshly built evaluator; (result, seconds) per run."""
    runs: dict[str, list[tuple[SearchResult, float]]] = {name: [] for name in algorithms}
    for name in algorithms:
        for seed in seeds:
            evaluator, cost_model = build()
            start = time.perf_counter()
            result = make_searcher(name).run(space, m, evaluator, replace(config, seed=seed), cost_model=cost_model)
            runs[name].append((result, time.perf_counter() - start))
    return runs


def common_reference(runs: dict[str, list[tuple[SearchResult, float]]], objectives: Sequence[str]) -> dict:
    """Per objective, the worst value evaluated by any run (min accuracy, max cost)."""
    values = {
        name: [e.metrics[name] for results in runs.values() for r, _ in results for e in r.evaluated if e.feasible]
        for name in objectives
    }
    return {name: (min(v) if name in MAXIMISED else max(v)) for name, v in values.items()}


def table(runs: dict[str, list[tuple[SearchResult, float]]], reference: dict[str, float]) -> str:
    header = (
        f"{'algorithm':<10} {'hypervolume':>22} {'front size':>12} {'evaluated':>10} {'best accuracy':>15} {'s/run':>7}"
    )
    lines = [header, "-" * len(header)]
    for name, results in runs.items():
        hv = [r.hypervolume(reference) for r, _ in results]
        front = [len(r.front) for r, _ in results]
        best = [
            max((e.metrics.get("accuracy", float("nan")) for e in r.front), default=float("nan")) for r, _ in results
        ]
        lines.append(
            f"{name:<10} {_mean_std(hv, '.1f'):>22} {_mean_std(front, '.1f'):>12} "
            f"{statistics.mean(len(r.evaluated) for r, _ in results):>10.0f} {_mean_std(best, '.2f'):>15} "
            f"{statistics.mean(s for _, s in results):>7.2f}"
        )
    return "\n".join(lines)


def _mean_std(values: Sequence[float], spec: str) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):{spec}} +- {std:{spec}}"


def _pairs(text: str | None) -> dict[str, float]:
    if not text:
        return {}
    pairs = (item.split("=", 1) for item in text.split(","))
    return {key.strip(): float(value) for key, value in pairs}


def _run_problem(run_dir: Path, calibration: str) -> tuple[SearchSpace, int, Problem]:
    """The supernet evaluator of a training run; its score cache is shared by every run of the comparison
    (an architecture two runs both propose is scored once; each run still counts it in its budget)."""
    from mixpath.evaluation import CalibrationSettings
    from mixpath.training import load_run
    from mixpath.workflow import cost_model_for, supernet_evaluator

    run = load_run(run_dir)
    costs = cost_model_for(run, with_latency=False)
    evaluator = supernet_evaluator(run, CalibrationSettings(calibration), costs)
    return run.space, run.config.m, lambda: (evaluator, costs)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="training run folder: score with its supernet (default: synthetic)")
    parser.add_argument("--calibrate", default="exact", help="with --run: exact, ema or none")
    parser.add_argument("--space", default="cifar-s1", help="space of the synthetic problem")
    parser.add_argument("--m", type=int, default=4, help="most paths per layer (synthetic problem)")
    parser.add_argument("--problem-seed", type=int, default=0, help="seed of the synthetic problem itself")
    parser.add_argument("--budget", type=int, default=200, help="evaluations per run")
    parser.add_argument("--population", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=5, help="runs per algorithm, seeds 0..n-1")
    parser.add_argument("--objectives", default="accuracy,flops")
    parser.add_argument("--constraint", help="e.g. flops=400 (upper bound; accuracy=80 is a lower bound)")
    parser.add_argument("--reference", help="hypervolume reference point, e.g. accuracy=80,flops=650")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    if args.run is not None:
        space, m, build = _run_problem(args.run, args.calibrate)
        source = f"supernet of {args.run}"
    else:
        space, m = get_space(args.space), args.m

        def build() -> tuple[Evaluator, CostFunction | None]:
            evaluator = SyntheticEvaluator(space, m, seed=args.problem_seed)
            return evaluator, evaluator.costs

        source = f"synthetic problem (seed {args.problem_seed})"
    config = SearchConfig(
        objectives=tuple(args.objectives.split(",")),
        constraints=_pairs(args.constraint),
        budget=args.budget,
        population=args.population,
    )
    runs = compare(build, space, m, config, range(args.seeds))
    reference = _pairs(args.reference) or common_reference(runs, config.objectives)
    print(
        f"{source}, space {space.name}, m={m}: {args.seeds} seeds x budget {args.budget}, "
        f"population {args.population}, objectives {args.objectives}, constraints {config.constraints or 'none'}"
    )
    print("reference point: " + ", ".join(f"{k}={v:.4g}" for k, v in reference.items()))
    print(table(runs, reference))


if __name__ == "__main__":
    main()
