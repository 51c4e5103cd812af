"""The one interface every searcher has; algorithms only fill in ``_search``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from mixpath.interfaces import CostFunction, Evaluator
from mixpath.search.config import SearchConfig
from mixpath.search.result import SearchResult
from mixpath.search.session import SearchSession
from mixpath.spaces import SearchSpace


class Searcher(ABC):
    """Searches ``space`` with up to ``m`` paths per layer, asking ``evaluator`` for metrics."""

    name: ClassVar[str]

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
        progress: bool = False,
    ) -> SearchResult:
        """Run until ``config.budget`` architectures are evaluated (or no new admissible one is found).

        ``cost_model`` gives flops/params/latency cheaply so candidates over a cost constraint are
        rejected before the evaluator sees them; without it constraints are judged on the evaluator's
        metrics, after evaluation. With ``state_dir`` the state is saved after every generation, and
        ``resume=True`` continues from it exactly as if never stopped. The budget may be raised on
        resume (everything else must match); that too equals one longer run when the old budget was a
        multiple of ``config.population``, since otherwise the last old generation was cut short.
        """
        session = SearchSession(
            self.name,
            space,
            m,
            evaluator,
            config or SearchConfig(),
            cost_model=cost_model,
            state_dir=state_dir,
            resume=resume,
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
