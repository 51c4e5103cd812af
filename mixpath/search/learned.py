"""Search a learned architecture distribution: FBNet's last step (``mixpath search RUN --algo fbnet``).

A differentiable supernet (``mixpath train --strategy fbnet``) ends with a probability per layer and candidate
(``RUN/fbnet.json``). Its search evaluates the derived architecture first (the argmax; with m > 1 the top-k
variant, ``mixpath.training.fbnet.derive``), then, as FBNet did with 6, draws more architectures from the
distribution (every layer independently, by its probabilities) until the budget is spent, so that the result
has a front like the other searchers' and ``retrain``/``export`` treat it the same way.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path

from mixpath.errors import MixPathError
from mixpath.io import read_json
from mixpath.search.base import Searcher
from mixpath.search.session import SearchSession
from mixpath.search.state import python_rng_state, restore_python_rng
from mixpath.spaces import Architecture, LayerChoice

LEARNED_FILE = "fbnet.json"
"""Where a run trained with strategy fbnet keeps its learned distribution."""


class LearnedSearcher(Searcher):
    """Derived architectures first, then samples of a per-layer distribution over choice strings."""

    name = "fbnet"

    def __init__(self, derived: Sequence[Architecture] = (), probabilities: Sequence[Mapping[str, float]] = ()) -> None:
        self.derived = list(derived)
        self.probabilities = [dict(layer) for layer in probabilities]

    @classmethod
    def from_run(cls, run_dir: Path | str) -> LearnedSearcher:
        """The distribution a run trained with strategy fbnet learned (RUN/fbnet.json)."""
        path = Path(run_dir) / LEARNED_FILE
        if not path.is_file():
            raise MixPathError(
                f"no {LEARNED_FILE} in {run_dir}: --algo fbnet searches a run trained with --strategy fbnet "
                "(written at the end of its first epoch)"
            )
        data = read_json(path)
        try:
            derived = [Architecture.parse(data[key]) for key in ("derived", "argmax")]
            probabilities = [{str(k): float(v) for k, v in layer.items()} for layer in data["probabilities"]]
        except (KeyError, TypeError, AttributeError, ValueError) as err:
            raise MixPathError(f"{path} is not an fbnet result ({type(err).__name__}: {err})") from None
        return cls(list(dict.fromkeys(derived)), probabilities)

    def _search(self, session: SearchSession) -> None:
        if not self.probabilities:
            raise MixPathError("--algo fbnet searches a run trained with --strategy fbnet (mixpath search RUN)")
        state = session.algorithm_state
        with session.restoring():
            rng = restore_python_rng(state["rng"]) if state is not None else random.Random(session.config.seed)
        if state is None:
            session.evaluate(self.derived[: session.remaining])
            session.end_generation({"rng": python_rng_state(rng)})
        while session.remaining > 0:
            batch = session.draw(min(session.config.population, session.remaining), lambda: self._sample(rng))
            if not batch:
                break
            session.evaluate(batch)
            session.end_generation({"rng": python_rng_state(rng)})

    def _sample(self, rng: random.Random) -> Architecture:
        return Architecture(
            tuple(
                LayerChoice.parse(rng.choices(list(layer), weights=list(layer.values()))[0])
                for layer in self.probabilities
            )
        )
