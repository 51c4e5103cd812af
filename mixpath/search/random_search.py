"""Random search: the baseline. Uniform architectures (the space's sampling rule) under the same
constraints and budget, evaluated in batches of ``config.population``."""

from __future__ import annotations

import random

from mixpath.search.base import Searcher
from mixpath.search.session import SearchSession
from mixpath.search.state import python_rng_state, restore_python_rng


class RandomSearcher(Searcher):
    name = "random"

    def _search(self, session: SearchSession) -> None:
        state = session.algorithm_state
        with session.restoring():
            rng = restore_python_rng(state["rng"]) if state is not None else random.Random(session.config.seed)
        while session.remaining > 0:
            n = min(session.config.population, session.remaining)
            batch = session.draw(n, lambda: session.space.random_architecture(rng, session.m))
            if not batch:
                break
            session.evaluate(batch)
            session.end_generation({"rng": python_rng_state(rng)})
