"""NSGA-II (pymoo) over the integer encoding of architectures (``mixpath.spaces.encoding``).

pymoo does the non-dominated sorting, crowding distance and binary tournaments; mixpath supplies the
operators, all acting on whole layers so every candidate is a valid architecture:

- sampling: the space's own random architectures (1..m paths per layer, uniform subsets);
- crossover: layer-wise uniform (each layer from one parent), probability 0.9 per mating;
- mutation: each layer re-sampled with probability ``config.mutation_prob``;
- repair: ``ArchEncoding.repair`` (1..m active paths per layer), a safety net;
- elimination: drops offspring seen before in this search (evaluated or rejected), duplicates within
  the generation, and, with a cost model, offspring over a cost constraint (rejection); pymoo then
  mates again until the generation is full.

Constraints on metrics that only the evaluator gives (or all of them, without a cost model) are pymoo
inequality constraints: infeasible architectures lose every tournament against feasible ones.

MoGA's weighted search (``config.weights``, Chu et al., "MoGA: Searching Beyond MobileNetV3"): MoGA
replaces NSGA-II's even-handed treatment of accuracy, latency and parameters by preference weights and
maximises the parameter count (``config.maximise``). Non-dominated sorting is unchanged; the weights enter
the crowding distance (``mixpath.search.pareto.weighted_crowding``), the second key of both places where
NSGA-II chooses: which members of the last admitted front survive, and which of two parents of equal rank
wins a tournament. A heavier objective makes gaps along it count more, so the population spreads along it
and sparsely along light ones. Without weights the survival is pymoo's own.
Objectives are minimised (accuracy negated). The ask/tell interface lets mixpath score a whole
generation in one evaluator call and save the state after each: the population (genes, objectives,
constraints, rank, crowding) and pymoo's random generator, from which the algorithm is rebuilt.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.crossover import Crossover
from pymoo.core.duplicate import DuplicateElimination
from pymoo.core.evaluator import Evaluator as PymooEvaluator
from pymoo.core.mutation import Mutation
from pymoo.core.population import Population
from pymoo.core.problem import Problem
from pymoo.core.repair import Repair
from pymoo.core.sampling import Sampling
from pymoo.core.termination import NoTermination
from pymoo.operators.survival.rank_and_crowding import RankAndCrowding
from pymoo.operators.survival.rank_and_crowding.metrics import CrowdingDiversity
from pymoo.problems.static import StaticProblem

from mixpath.checks import is_number
from mixpath.search.base import Searcher
from mixpath.search.objectives import minimised, violations
from mixpath.search.operators import crossover, mutate
from mixpath.search.pareto import weighted_crowding
from mixpath.search.result import EvaluatedArch
from mixpath.search.session import SearchSession
from mixpath.spaces.encoding import ArchEncoding

CROSSOVER_PROB = 0.9


def _python_rng(random_state: np.random.Generator) -> random.Random:
    """A Python generator seeded from pymoo's, so the space's sampling rule can be reused."""
    return random.Random(int(random_state.integers(2**63)))


class _ArchSampling(Sampling):
    def __init__(self, session: SearchSession, encoding: ArchEncoding) -> None:
        super().__init__()
        self.session, self.encoding = session, encoding

    def _do(self, problem: Problem, n_samples: int, *args: Any, random_state: Any = None, **kwargs: Any):
        rng = _python_rng(random_state)
        n = min(n_samples, self.session.remaining)
        archs = self.session.draw(n, lambda: self.session.space.random_architecture(rng, self.session.m))
        return np.array([self.encoding.encode(a) for a in archs], dtype=np.int64).reshape(-1, problem.n_var)


class _LayerCrossover(Crossover):
    def __init__(self, encoding: ArchEncoding) -> None:
        super().__init__(n_parents=2, n_offsprings=2, prob=CROSSOVER_PROB)
        self.encoding = encoding

    def _do(self, problem: Problem, X: np.ndarray, *args: Any, random_state: Any = None, **kwargs: Any):
        rng = _python_rng(random_state)
        children = np.empty((2, X.shape[1], X.shape[2]), dtype=np.int64)
        for k in range(X.shape[1]):
            pair = crossover(self.encoding.decode(X[0, k]), self.encoding.decode(X[1, k]), rng)
            children[:, k] = [self.encoding.encode(child) for child in pair]
        return children


class _LayerMutation(Mutation):
    def __init__(self, encoding: ArchEncoding, prob_per_layer: float) -> None:
        super().__init__(prob=1.0)
        self.encoding, self.prob_per_layer = encoding, prob_per_layer

    def _do(self, problem: Problem, X: np.ndarray, *args: Any, random_state: Any = None, **kwargs: Any):
        rng = _python_rng(random_state)
        space, m = self.encoding.space, self.encoding.m
        mutants = [mutate(space, m, self.encoding.decode(x), rng, self.prob_per_layer) for x in X]
        return np.array([self.encoding.encode(a) for a in mutants], dtype=np.int64).reshape(X.shape)


class _EncodingRepair(Repair):
    def __init__(self, encoding: ArchEncoding) -> None:
        super().__init__()
        self.encoding = encoding

    def _do(self, problem: Problem, X: np.ndarray, *args: Any, random_state: Any = None, **kwargs: Any):
        rng = _python_rng(random_state)
        return np.array([self.encoding.repair(x, rng) for x in X], dtype=np.int64).reshape(X.shape)


class _InadmissibleElimination(DuplicateElimination):
    """pymoo's duplicate hook, widened to everything the session refuses (seen, or over a cost limit)."""

    def __init__(self, session: SearchSession, encoding: ArchEncoding) -> None:
        super().__init__()
        self.session, self.encoding = session, encoding

    def _do(self, pop: Population, other: Population | None, is_duplicate: np.ndarray) -> np.ndarray:
        keys = [tuple(int(v) for v in x) for x in pop.get("X")]
        if other is not None:
            taken = {tuple(int(v) for v in x) for x in other.get("X")}
            return is_duplicate | np.array([key in taken for key in keys], dtype=bool)
        first: set[tuple[int, ...]] = set()
        for i, key in enumerate(keys):
            if key in first or not self.session.admissible(self.encoding.decode(key)):
                is_duplicate[i] = True
            first.add(key)
        return is_duplicate


class _WeightedCrowding(CrowdingDiversity):
    """``weighted_crowding`` as pymoo's crowding metric (the survival also stores it for the tournaments)."""

    def __init__(self, weights: np.ndarray) -> None:
        super().__init__()
        self.weights = weights

    def _do(self, F: np.ndarray, n_remove: Any = None) -> np.ndarray:
        return weighted_crowding(F, self.weights)


class NSGA2Searcher(Searcher):
    name = "nsga2"
    weighted = True

    def _search(self, session: SearchSession) -> None:
        config = session.config
        encoding = ArchEncoding(session.space, session.m)
        problem = Problem(
            n_var=encoding.n_genes,
            n_obj=len(config.objectives),
            n_ieq_constr=len(config.constraints),
            xl=encoding.lower,
            xu=encoding.upper,
            vtype=int,
        )
        algorithm = NSGA2(
            pop_size=config.population,
            sampling=_ArchSampling(session, encoding),
            crossover=_LayerCrossover(encoding),
            mutation=_LayerMutation(encoding, config.mutation_prob),
            repair=_EncodingRepair(encoding),
            eliminate_duplicates=_InadmissibleElimination(session, encoding),
            termination=NoTermination(),
            seed=config.seed,
            **_survival(config.objectives, config.weights),
        )
        algorithm.setup(problem)
        if session.algorithm_state is not None:
            with session.restoring():
                _restore(algorithm, problem, session.algorithm_state)
        while session.remaining > 0:
            offspring = algorithm.ask()
            if offspring is None or len(offspring) == 0:
                break
            records = session.evaluate([encoding.decode(x) for x in offspring.get("X")])
            offspring = offspring[[i for i, record in enumerate(records) if record is not None]]
            _set_scores(problem, offspring, [record for record in records if record is not None], session)
            algorithm.tell(infills=offspring)
            session.end_generation(_state(algorithm))


def _survival(objectives: tuple[str, ...], weights: dict[str, float]) -> dict[str, Any]:
    """NSGA2's ``survival`` argument for MoGA's weights (objectives not named weigh 1), none without them."""
    if not weights:
        return {}
    vector = np.array([weights.get(name, 1.0) for name in objectives])
    return {"survival": RankAndCrowding(crowding_func=_WeightedCrowding(vector))}


def _set_scores(problem: Problem, pop: Population, records: list[EvaluatedArch], session: SearchSession) -> None:
    config = session.config
    F = np.array([minimised(r.metrics, config.objectives, config.maximise) for r in records]).reshape(len(records), -1)
    G = np.array([violations(r.metrics, config.constraints) for r in records]).reshape(len(records), -1)
    _assign(problem, pop, F, G)


def _assign(problem: Problem, pop: Population, F: np.ndarray, G: np.ndarray) -> None:
    """Give ``pop`` its objectives and constraint values the way pymoo's own evaluation would."""
    scores = {"F": F, "G": G} if problem.n_ieq_constr else {"F": F}
    PymooEvaluator().eval(StaticProblem(problem, **scores), pop)


def _state(algorithm: NSGA2) -> dict[str, Any]:
    pop = algorithm.pop
    return {
        "rng": algorithm.random_state.bit_generator.state,
        "n_iter": algorithm.n_iter,
        "X": pop.get("X").astype(int).tolist(),
        "F": pop.get("F").tolist(),
        "G": pop.get("G").tolist(),
        "rank": [_plain(v) for v in pop.get("rank")],
        "crowding": [_plain(v) for v in pop.get("crowding")],
    }


def _restore(algorithm: NSGA2, problem: Problem, state: dict[str, Any]) -> None:
    """Put a saved population and random generator back into a freshly set-up NSGA2; a state that does not fit
    (genes out of range, counts of the wrong type or length) raises ValueError (``SearchSession.restoring``)."""
    X = np.array(state["X"], dtype=np.int64).reshape(-1, problem.n_var)
    if (X < problem.xl).any() or (X > problem.xu).any():
        raise ValueError("its population holds genes outside the encoding")
    pop = Population.new(X=X)
    F = np.array(state["F"], dtype=float).reshape(len(pop), problem.n_obj)
    G = np.array(state["G"], dtype=float).reshape(len(pop), problem.n_ieq_constr)
    n_iter = state["n_iter"]
    if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 0:
        raise ValueError(f"n_iter={n_iter!r} is not a number of generations")
    for name in ("rank", "crowding"):
        values = state[name]
        numbers = isinstance(values, list) and all(v is None or is_number(v) for v in values)
        if not numbers or len(values) != len(pop):
            raise ValueError(f"its {name} is not one number per member of the population")
    _assign(problem, pop, F, G)
    pop.set("rank", state["rank"], "crowding", state["crowding"])
    algorithm.pop = pop
    algorithm.is_initialized = True
    algorithm.n_iter = state["n_iter"]
    algorithm.random_state.bit_generator.state = state["rng"]


def _plain(value: Any) -> float | None:
    return None if value is None else float(value)
