"""Which metrics a search may optimise or bound, their direction, and the minimisation form searchers use.

Searchers minimise: accuracy (percent, maximised) enters as ``-accuracy``; flops, params and latency
enter as they are, unless a search maximises them (``SearchConfig.maximise``: MoGA maximises params), then
negated too. A constraint bounds a metric on its bad side: an upper bound for flops, params and
latency (``{"flops": 50.0}`` = at most 50 M multiply-adds), a lower bound for accuracy
(``{"accuracy": 90.0}`` = at least 90 %), whichever way the search optimises it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

import numpy as np

from mixpath.errors import MixPathError

METRICS = ("accuracy", "flops", "params", "latency")
MAXIMISED = frozenset({"accuracy"})


def check_metric_names(names: Iterable[str], what: str) -> None:
    """Raise MixPathError for a name that is not a searchable metric; ``what`` names the setting."""
    for name in names:
        if name not in METRICS:
            raise MixPathError(f"unknown {what} {name!r}; choose from: {', '.join(METRICS)}")


def metric(metrics: Mapping[str, float], name: str) -> float:
    """One metric as a float, with an error naming what the evaluator did return."""
    if name not in metrics:
        given = ", ".join(sorted(metrics)) or "none"
        raise MixPathError(f"the evaluator returned no {name!r} metric (it returned: {given})")
    return float(metrics[name])


def minimised(metrics: Mapping[str, float], objectives: Sequence[str], maximise: Collection[str] = ()) -> np.ndarray:
    """The objective vector to minimise: accuracy and the metrics in ``maximise`` negated, the others as they are."""
    return np.array([(-1.0 if name in maximise else _sign(name)) * metric(metrics, name) for name in objectives])


def violations(metrics: Mapping[str, float], constraints: Mapping[str, float]) -> np.ndarray:
    """One value per constraint, in its units; <= 0 means satisfied (pymoo's inequality convention)."""
    return np.array([_sign(name) * (metric(metrics, name) - limit) for name, limit in constraints.items()])


def satisfies(metrics: Mapping[str, float], constraints: Mapping[str, float]) -> bool:
    """True when every constraint holds."""
    return bool(np.all(violations(metrics, constraints) <= 0.0))


def _sign(name: str) -> float:
    return -1.0 if name in MAXIMISED else 1.0
