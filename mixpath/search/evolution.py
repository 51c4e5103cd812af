"""SPOS evolution (Guo et al., Algorithm 1): single objective under hard constraints.

Generation 1 is ``population`` random architectures. After each generation the ``top_k`` best
feasible architectures seen so far (by the first objective, accuracy by default) are the parents;
the next generation is half mutants (each layer re-sampled with ``mutation_prob``) and half layer-wise
crossovers of two random parents, topped up with random architectures when too few new ones come out
(as in SPOS's code, where similar parents give few new crossovers). A candidate that is invalid,
already evaluated, or over a cost constraint (with a cost model) is rejected and re-drawn, a bounded
number of times. SPOS's defaults
are population 50, top 10, mutation 0.1, 20 generations; the number of generations here is whatever
``config.budget`` allows (1000 = 20 x 50).
"""

from __future__ import annotations

import random

from mixpath.search.base import Searcher
from mixpath.search.objectives import minimised
from mixpath.search.operators import crossover, mutate
from mixpath.search.result import EvaluatedArch
from mixpath.search.session import SearchSession
from mixpath.search.state import python_rng_state, restore_python_rng
from mixpath.spaces import Architecture


class EvolutionSearcher(Searcher):
    name = "evolution"

    def _search(self, session: SearchSession) -> None:
        space, config = session.space, session.config
        state = session.algorithm_state
        by_arch = {space.format(r.arch): r for r in session.records}
        with session.restoring():
            rng = restore_python_rng(state["rng"]) if state is not None else random.Random(config.seed)
            parents: list[EvaluatedArch] = [by_arch[text] for text in state["parents"]] if state is not None else []

        def fitness(record: EvaluatedArch) -> float:
            return float(minimised(record.metrics, config.objectives[:1], config.maximise)[0])

        while session.remaining > 0:
            candidates = _candidates(session, [p.arch for p in parents], rng)
            if not candidates:
                break
            scored = [r for r in session.evaluate(candidates) if r is not None and r.feasible]
            parents = sorted(parents + scored, key=fitness)[: config.top_k]
            session.end_generation({"rng": python_rng_state(rng), "parents": [space.format(p.arch) for p in parents]})


def _candidates(session: SearchSession, parents: list[Architecture], rng: random.Random) -> list[Architecture]:
    """One generation: half mutants, half crossovers of the parents, random ones for the rest."""
    space, m, config = session.space, session.m, session.config
    n = min(config.population, session.remaining)
    candidates: list[Architecture] = []
    if parents:
        candidates += session.draw(n // 2, lambda: mutate(space, m, rng.choice(parents), rng, config.mutation_prob))
        candidates += session.draw(
            n - len(candidates),
            lambda: crossover(rng.choice(parents), rng.choice(parents), rng)[0],
            candidates,
        )
    candidates += session.draw(n - len(candidates), lambda: space.random_architecture(rng, m), candidates)
    return candidates
