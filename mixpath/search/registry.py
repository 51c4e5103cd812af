"""Searchers by name, for the CLI and configs."""

from __future__ import annotations

from mixpath.errors import MixPathError
from mixpath.search.base import Searcher
from mixpath.search.evolution import EvolutionSearcher
from mixpath.search.learned import LearnedSearcher
from mixpath.search.nsga2 import NSGA2Searcher
from mixpath.search.random_search import RandomSearcher

SEARCHERS: dict[str, type[Searcher]] = {
    cls.name: cls for cls in (EvolutionSearcher, LearnedSearcher, NSGA2Searcher, RandomSearcher)
}


def list_searchers() -> list[str]:
    return sorted(SEARCHERS)


def make_searcher(name: str) -> Searcher:
    """A new searcher of the named algorithm: nsga2, evolution, random, or fbnet (``LearnedSearcher``: give it the
    run's distribution with ``LearnedSearcher.from_run``)."""
    if name not in SEARCHERS:
        raise MixPathError(f"unknown search algorithm {name!r}; choose one of: {', '.join(list_searchers())}")
    return SEARCHERS[name]()
