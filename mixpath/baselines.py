"""Architectures to hold a search's pick against at equal cost: what a search must beat to be worth running.

- ``uniform_smallest``: every layer its cheapest single path (e3:k3 in every layer of the mbconv spaces);
- ``random_equal_flops``: the supernet's own sampling rule, conditioned on FLOPs within 5 % of a target;
- ``params_pick``: what parameter count alone would choose: the most parameters within a FLOPs budget;
- ``median_flops``: the FLOPs of a typical sampled architecture, the pipeline's default budget.

All of them ask a ``CostModel`` (FLOPs in M multiply-adds, params in M) and never a supernet, so they cost
milliseconds. ``uniform_smallest`` and ``params_pick`` use that a cost is a base plus one term per searchable
layer (``mixpath.evaluation.costs``): per-layer terms are read off as differences of whole-model counts.
"""

from __future__ import annotations

import functools
import math
import random
import statistics
from collections.abc import Mapping

from mixpath.errors import MixPathError
from mixpath.evaluation import CostModel, layer_choices
from mixpath.evaluation.layerwise import reference_architecture
from mixpath.spaces import Architecture, LayerChoice, SearchSpace

EQUAL_FLOPS_TOLERANCE = 0.05
""""Equal FLOPs" for the random baseline: within this fraction of the target."""
RANDOM_DRAWS = 100_000
"""Draws ``random_equal_flops`` tries before giving up (a few seconds on fmnist-s1)."""
BUDGET_DRAWS = 1000
"""Architectures ``median_flops`` samples."""


def uniform_smallest(space: SearchSpace, cost: CostModel) -> Architecture:
    """Every layer its cheapest single-path choice (fewest multiply-adds, then fewest parameters).

    Read from the space's declaration through the cost model, not from op names: on the mbconv spaces it is
    the smallest expansion with the smallest kernel, e3:k3 in every layer. As costs add up per layer, it is
    also the architecture with the fewest FLOPs of the space for any m.
    """
    reference = reference_architecture(space)
    return Architecture(
        tuple(
            min(layer_choices(spec, 1), key=functools.partial(_layer_counts, cost, reference, i))
            for i, spec in enumerate(space.layers)
        )
    )


def check_budget(space: SearchSpace, max_flops: float, cost: CostModel) -> None:
    """Fail in one line when no architecture of ``space`` fits ``max_flops`` (M multiply-adds), so that an
    impossible budget is refused before anything is trained or searched."""
    if isinstance(max_flops, bool) or not isinstance(max_flops, (int, float)) or not math.isfinite(max_flops):
        raise MixPathError(f"FLOPs budget {max_flops!r} must be a finite number of M multiply-adds")
    smallest = uniform_smallest(space, cost)
    floor = cost(smallest)["flops"]
    if floor > max_flops:
        raise MixPathError(
            f"no architecture of {space.name} fits a FLOPs budget of {max_flops:g} M multiply-adds: the smallest "
            f"({space.format(smallest)}) has {floor:.3f} M"
        )


def check_constraints(space: SearchSpace, constraints: Mapping[str, float], cost: CostModel) -> None:
    """Fail in one line when a FLOPs or params limit (M multiply-adds, M parameters) is below the least any
    architecture of ``space`` has, so that a search that cannot find anything is refused before it runs."""
    if "flops" in constraints:
        check_budget(space, constraints["flops"], cost)
    if "params" in constraints:
        reference = uniform_smallest(space, cost)
        least = cost.counts(reference)[1] + sum(
            min(_layer_counts(cost, reference, i, choice)[1] for choice in layer_choices(spec, 1))
            for i, spec in enumerate(space.layers)
        )
        if least / 1e6 > constraints["params"]:
            raise MixPathError(
                f"no architecture of {space.name} fits a limit of {constraints['params']:g} M parameters: the "
                f"smallest has {least / 1e6:.4f} M"
            )


def median_flops(space: SearchSpace, m: int, cost: CostModel, draws: int = BUDGET_DRAWS, seed: int = 0) -> float:
    """Median FLOPs (M multiply-adds, rounded to 0.01) of ``draws`` architectures sampled by MixPath's rule
    with up to ``m`` paths: the cost of a typical architecture the supernet was trained on."""
    rng = random.Random(seed)
    return round(statistics.median(cost(space.random_architecture(rng, m))["flops"] for _ in range(draws)), 2)


def random_equal_flops(
    space: SearchSpace,
    m: int,
    target_flops: float,
    cost: CostModel,
    seed: int,
    *,
    tolerance: float = EQUAL_FLOPS_TOLERANCE,
    max_draws: int = RANDOM_DRAWS,
) -> Architecture:
    """A random architecture with FLOPs within ``tolerance`` of ``target_flops`` (M multiply-adds).

    Rejection sampling from the supernet's own sampling rule (``space.random_architecture`` with up to ``m``
    paths), so it is a draw from the distribution the supernet trained on, conditioned on equal cost: the
    baseline a search has to beat to show it learned anything beyond "spend the FLOPs". The same seed gives
    the same architecture; after ``max_draws`` misses it fails in one line.
    """
    rng = random.Random(seed)
    for _ in range(max_draws):
        arch = space.random_architecture(rng, m)
        if abs(cost(arch)["flops"] - target_flops) <= tolerance * target_flops:
            return arch
    raise MixPathError(
        f"no random architecture of {space.name} (m={m}) within {tolerance:.0%} of {target_flops:.3f} M "
        f"multiply-adds in {max_draws} draws; choose a budget nearer the middle of the space"
    )


def params_pick(space: SearchSpace, m: int, max_flops: float, cost: CostModel) -> Architecture:
    """The architecture with the most parameters among all with up to ``m`` paths per layer and at most
    ``max_flops`` M multiply-adds: what choosing by parameter count alone would pick at that budget.

    Exact, not sampled: costs are a base plus one term per layer, so this is a multiple-choice knapsack,
    solved layer by layer keeping only the (FLOPs, params) totals no other total dominates (as many FLOPs or
    fewer and more parameters); a few thousand totals on fmnist-s1 at m=4, milliseconds. Exact means the
    baseline is the best that parameter count can do, not a lucky or unlucky sample, and needs no seed.
    Ties go to the fewer FLOPs, then to the choices ``layer_choices`` lists first.
    """
    check_budget(space, max_flops, cost)
    # against the cheapest choice of every layer, no layer's term is negative: a partial total over the
    # budget stays over it, so it can be dropped at once
    reference = uniform_smallest(space, cost)
    base_macs, base_params = cost.counts(reference)
    # (multiply-adds, params, choices so far), sorted by multiply-adds with params strictly increasing
    totals: list[tuple[int, int, tuple[LayerChoice, ...]]] = [(base_macs, base_params, ())]
    for i, spec in enumerate(space.layers):
        extra = [(choice, *_layer_counts(cost, reference, i, choice)) for choice in layer_choices(spec, m)]
        grown = [
            (macs + dm, params + dp, (*chosen, choice))
            for macs, params, chosen in totals
            for choice, dm, dp in extra
            if (macs + dm) / 1e6 <= max_flops
        ]
        grown.sort(key=lambda total: (total[0], -total[1]))
        totals = []
        for total in grown:
            if not totals or total[1] > totals[-1][1]:
                totals.append(total)
    return Architecture(totals[-1][2])


def _layer_counts(cost: CostModel, reference: Architecture, index: int, choice: LayerChoice) -> tuple[int, int]:
    """(multiply-adds, params) that layer ``index`` running ``choice`` adds over its choice in ``reference``."""
    changed = Architecture((*reference.layers[:index], choice, *reference.layers[index + 1 :]))
    (macs, params), (base_macs, base_params) = cost.counts(changed), cost.counts(reference)
    return macs - base_macs, params - base_params
