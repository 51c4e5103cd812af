"""What a search is asked to do: objectives, constraints, budget, seed and the evolution knobs."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from mixpath.checks import check_seed, check_whole_number, is_number
from mixpath.errors import MixPathError
from mixpath.search.objectives import check_metric_names

OBJECTIVES = ("accuracy", "flops", "params", "latency")
"""Every metric a search can optimise."""


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
    - ``weights``: nsga2 only, MoGA's preference weights: per objective, the weight of its term in the
      crowding distance (objectives not named weigh 1; see ``mixpath.search.pareto.weighted_crowding``).
    - ``maximise``: cost objectives to maximise rather than minimise (MoGA maximises params).
    """

    objectives: tuple[str, ...] = ("accuracy", "flops")
    constraints: dict[str, float] = field(default_factory=dict)
    budget: int = 1000
    population: int = 50
    seed: int = 0
    mutation_prob: float = 0.1
    top_k: int = 10
    reference: dict[str, float] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    maximise: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.objectives, str) or not isinstance(self.objectives, (list, tuple)):
            raise MixPathError(f"objectives={self.objectives!r} must be a list of metric names")
        if not all(isinstance(name, str) for name in self.objectives):
            raise MixPathError(f"objectives={list(self.objectives)!r} must be metric names (text)")
        for name in ("constraints", "reference"):
            bounds = getattr(self, name)
            if not isinstance(bounds, dict) or not all(is_number(v) for v in bounds.values()):
                raise MixPathError(f"{name}={bounds!r} must map metric names to numbers")
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
        check_whole_number("budget", self.budget, 1)
        check_whole_number("population", self.population, 2)
        check_whole_number("top_k", self.top_k, 1)
        check_seed("seed", self.seed)
        if not is_number(self.mutation_prob) or not 0.0 <= self.mutation_prob <= 1.0:
            raise MixPathError(f"mutation_prob={self.mutation_prob!r} must be a number in [0, 1]")
        self._check_preferences()

    def _check_preferences(self) -> None:
        """MoGA's settings: weights of objectives, finite and >= 0, not all 0; maximised cost objectives."""
        if not isinstance(self.weights, dict) or not all(is_number(v) for v in self.weights.values()):
            raise MixPathError(f"weights={self.weights!r} must map objectives to numbers")
        object.__setattr__(self, "weights", {k: float(v) for k, v in self.weights.items()})
        for name, value in self.weights.items():
            if name not in self.objectives:
                raise MixPathError(
                    f"weight given for {name!r}, which is not an objective ({', '.join(self.objectives)})"
                )
            if not math.isfinite(value) or value < 0:
                raise MixPathError(f"weight {name}={value} must be a finite number >= 0")
        if not any(self.weights.get(name, 1.0) > 0 for name in self.objectives):
            raise MixPathError("every objective has weight 0: at least one must weigh more")
        if isinstance(self.maximise, str) or not isinstance(self.maximise, (list, tuple)):
            raise MixPathError(f"maximise={self.maximise!r} must be a list of objective names")
        object.__setattr__(self, "maximise", tuple(self.maximise))
        for name in self.maximise:
            if name not in self.objectives or name == "accuracy":
                raise MixPathError(f"maximise names {name!r}: only cost objectives of this search can be maximised")

    def to_json(self) -> dict[str, Any]:
        """Every setting; ``weights`` and ``maximise`` only when set, so states saved before they existed
        resume."""
        data = asdict(self)
        data["objectives"] = list(self.objectives)
        data["maximise"] = list(self.maximise)
        for name in ("weights", "maximise"):
            if not data[name]:
                del data[name]
        return data

    @classmethod
    def from_json(cls, data: Any, source: object = "the search settings") -> SearchConfig:
        """The settings saved by ``to_json``; ``source`` (the file) names them in the one-line errors."""
        known = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or not set(data) <= known:
            raise MixPathError(f"{source}: the search settings must be a JSON object with keys from {sorted(known)}")
        try:
            return cls(**data)
        except MixPathError as err:
            raise MixPathError(f"{source}: {err}") from None


def parse_objectives(text: str) -> tuple[str, ...]:
    """``accuracy,flops`` as ("accuracy", "flops"): the CLI's and the protocols' way of naming objectives."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    bad = [name for name in names if name not in OBJECTIVES]
    if bad or not names:
        raise MixPathError(f"unknown objective {bad[0] if bad else text!r}; choose from: {', '.join(OBJECTIVES)}")
    return names


def parse_weights(text: str) -> dict[str, float]:
    """``accuracy=1,latency=0.5`` as {"accuracy": 1.0, "latency": 0.5}."""
    weights: dict[str, float] = {}
    for item in (part.strip() for part in text.split(",") if part.strip()):
        name, _, value = item.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise MixPathError(f"malformed weight {item!r}: expected objective=number, e.g. latency=0.5") from None
    return weights
