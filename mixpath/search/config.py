"""What a search is asked to do: objectives, constraints, budget, seed and the evolution knobs."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from mixpath.errors import MixPathError
from mixpath.search.objectives import check_metric_names


@dataclass(frozen=True)
class SearchConfig:
    """Settings shared by every searcher.

    - ``objectives``: metrics to optimise (accuracy maximised, the others minimised); evolution
      optimises the first one and reports the front over all of them.
    - ``constraints``: bounds per metric, see ``mixpath.search.objectives`` (upper for costs, lower for
      accuracy), e.g. ``{"flops": 50.0}`` = at most 50 M multiply-adds.
    - ``budget``: how many architectures the evaluator scores, exactly (fewer only if the space or the
      constraints run out of new candidates). The default is SPOS's 50 x 20 generations.
    - ``population``: candidates per generation (random search: evaluations per batch).
    - ``mutation_prob``: per-layer probability of re-sampling a layer in a mutation (SPOS: 0.1).
    - ``top_k``: parents kept by evolution (SPOS: 10).
    - ``reference``: hypervolume reference point per objective, in the metric's units; unset
      objectives get one at the start of the search (see ``SearchSession.reference``).
    """

    objectives: tuple[str, ...] = ("accuracy", "flops")
    constraints: dict[str, float] = field(default_factory=dict)
    budget: int = 1000
    population: int = 50
    seed: int = 0
    mutation_prob: float = 0.1
    top_k: int = 10
    reference: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "objectives", tuple(self.objectives))
        object.__setattr__(self, "constraints", {k: float(v) for k, v in self.constraints.items()})
        object.__setattr__(self, "reference", {k: float(v) for k, v in self.reference.items()})
        if not self.objectives:
            raise MixPathError("a search needs at least one objective, e.g. accuracy,flops")
        if len(set(self.objectives)) != len(self.objectives):
            raise MixPathError(f"objectives {','.join(self.objectives)} name a metric twice")
        check_metric_names(self.objectives, "objective")
        check_metric_names(self.constraints, "constraint metric")
        check_metric_names(self.reference, "reference metric")
        unused = sorted(set(self.reference) - set(self.objectives))
        if unused:
            raise MixPathError(f"reference point given for {unused[0]!r}, which is not an objective")
        for name, value in {**self.constraints, **self.reference}.items():
            if not math.isfinite(value):
                raise MixPathError(f"{name}={value} must be a finite number")
        _check_int("budget", self.budget, 1)
        _check_int("population", self.population, 2)
        _check_int("top_k", self.top_k, 1)
        if not isinstance(self.seed, int):
            raise MixPathError(f"seed={self.seed!r} must be an integer")
        if not 0.0 <= self.mutation_prob <= 1.0:
            raise MixPathError(f"mutation_prob={self.mutation_prob} must be in [0, 1]")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["objectives"] = list(self.objectives)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SearchConfig:
        return cls(**data)


def _check_int(name: str, value: Any, smallest: int) -> None:
    if not isinstance(value, int) or value < smallest:
        raise MixPathError(f"{name}={value!r} must be an integer >= {smallest}")
