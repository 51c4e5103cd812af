"""Stage two of one-shot NAS: search a space for architectures, asking an evaluator for their metrics.

Search knows nothing of torch: an ``Evaluator`` (``mixpath.interfaces``) scores architectures,
whether it stands for a trained supernet, a benchmark table or a user function. Three searchers share
one interface (``Searcher.run``): ``nsga2`` (multi-objective, pymoo), ``evolution`` (SPOS Algorithm 1,
single objective under hard constraints) and ``random`` (the baseline)::

    from mixpath.search import SearchConfig, make_searcher
    from mixpath.search.synthetic import SyntheticEvaluator
    from mixpath.spaces import get_space

    space = get_space("cifar-s1")
    evaluator = SyntheticEvaluator(space, m=4)          # or a supernet evaluator
    config = SearchConfig(objectives=("accuracy", "flops"), constraints={"flops": 150.0}, budget=400,
                          population=40, seed=0)
    result = make_searcher("nsga2").run(space, 4, evaluator, config, cost_model=evaluator.costs,
                                        state_dir="runs/x/search", resume=False, progress=True)
    result.save("runs/x/search")                        # evaluated/front .csv/.json, history.json
    result.plot("runs/x/search/front.png")              # accuracy against FLOPs, front highlighted
    best = result.front[0].arch                         # Architecture; space.format(best) for its string
"""

from mixpath.interfaces import CostFunction, Evaluator
from mixpath.search.base import Searcher
from mixpath.search.config import OBJECTIVES, SearchConfig, parse_objectives, parse_weights
from mixpath.search.registry import list_searchers, make_searcher
from mixpath.search.result import EvaluatedArch, SearchResult

__all__ = [
    "OBJECTIVES",
    "CostFunction",
    "EvaluatedArch",
    "Evaluator",
    "SearchConfig",
    "SearchResult",
    "Searcher",
    "list_searchers",
    "make_searcher",
    "parse_objectives",
    "parse_weights",
]
