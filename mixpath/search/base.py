"""The one interface every searcher has; algorithms only fill in ``_search``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from mixpath.errors import MixPathError
from mixpath.interfaces import CostFunction, Evaluator
from mixpath.search.config import SearchConfig
from mixpath.search.result import SearchResult
from mixpath.search.session import SearchSession
from mixpath.spaces import SearchSpace


class Searcher(ABC):
    """Searches ``space`` with up to ``m`` paths per layer, asking ``evaluator`` for metrics."""

    name: ClassVar[str]
    weighted: ClassVar[bool] = False
    """Whether the algorithm uses ``SearchConfig.weights`` (nsga2); the others refuse them."""

    def run(
        self,
        space: SearchSpace,
        m: int,
        evaluator: Evaluator,
        config: SearchConfig | None = None,
        *,
        cost_model: CostFunction | None = None,
        state_dir: str | Path | None = None,
        resume: bool = False,
        overwrite: bool = False,
        progress: bool = False,
    ) -> SearchResult:
        """Run until ``config.budget`` architectures are evaluated (or no new admissible one is found).

        ``cost_model`` gives flops/params/latency cheaply so candidates over a cost constraint are
        rejected before the evaluator sees them; without it constraints are judged on the evaluator's
        metrics, after evaluation. With ``state_dir`` the state is saved after every generation, and
        ``resume=True`` continues from it exactly as if never stopped; a new search into a ``state_dir`` that
        holds an earlier one is refused unless ``overwrite=True``. The budget may be raised on
        resume (everything else must match); that too equals one longer run when the old budget was a
        multiple of ``config.population``, since otherwise the last old generation was cut short.
        """
        config = config or SearchConfig()
        if config.weights and not self.weighted:
            raise MixPathError(f"objective weights are a setting of nsga2 (MoGA's weighted search), not of {self.name}")
        session = SearchSession(
            self.name,
            space,
            m,
            evaluator,
            config,
            cost_model=cost_model,
            state_dir=state_dir,
            resume=resume,
            overwrite=overwrite,
            progress=progress,
        )
        try:
            if session.remaining > 0:
                self._search(session)
        finally:
            session.close()
        return session.result()

    @abstractmethod
    def _search(self, session: SearchSession) -> None:
        """Run generations while ``session.remaining > 0``, ending each with ``session.end_generation``
        and its own JSON state; continue from ``session.algorithm_state`` when that is not None."""
