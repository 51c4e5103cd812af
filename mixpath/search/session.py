"""The bookkeeping every searcher shares: cache, budget, constraints, history, saved state, progress.

A searcher only proposes architectures and decides what survives; the session

- screens proposals (``draw``, ``admissible``): valid in the space, never seen before and, when a cost
  model is given, within the cost constraints; a proposal over a cost limit is rejected *before* the
  evaluator sees it and remembered so it is not proposed again;
- scores them (``evaluate``) with one ``evaluator.evaluate`` call per batch, never twice the same
  architecture, and never more than ``config.budget`` in total; the progress bar moves per architecture
  when the evaluator reports each (its ``on_scored`` hook, ``mixpath.interfaces``), else per batch;
- closes a generation (``end_generation``): hypervolume of the front of everything evaluated so far,
  a log line, the progress bar's figures, and the state file ``search_state.json`` written atomically with the
  searcher's own state (random generators, population) so ``resume=True`` continues exactly.

Hypervolume reference point, per objective, the first that applies: ``config.reference``; the constraint
bound on that metric; for accuracy 0 %; the cost model's value for the space's largest architecture;
the largest value evaluated by the end of the first generation that evaluated anything. It is fixed
for the whole search and saved.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from mixpath.errors import MixPathError
from mixpath.interfaces import CostFunction, Evaluator
from mixpath.io import read_json, remove_stale_temp_files, write_json
from mixpath.search.config import SearchConfig
from mixpath.search.objectives import MAXIMISED, metric, satisfies
from mixpath.search.result import RESULTS_FILE, EvaluatedArch, SearchResult
from mixpath.spaces import Architecture, SearchSpace

logger = logging.getLogger(__name__)

STATE_FILE = "search_state.json"
_STATE_VERSION = 1
BASE_TRIES = 1000
TRIES_PER_ARCH = 100
"""``draw`` calls its proposer at most BASE_TRIES + TRIES_PER_ARCH x n times for n architectures: enough that a
space with room to spare fills a generation, and a bound, so that a search whose space has run out of admissible
unseen architectures (a small space, tight constraints) ends instead of drawing forever."""


def saved_search_config(state_dir: str | Path) -> SearchConfig:
    """The settings of the search saved in ``state_dir`` (its ``search_state.json``), to resume it with."""
    path = Path(state_dir) / STATE_FILE
    if not path.is_file():
        raise MixPathError(f"nothing to resume in {state_dir}: no {STATE_FILE} there")
    state = read_json(path)
    if not isinstance(state, dict) or not isinstance(state.get("config"), dict):
        raise MixPathError(f"{path} is not a search state written by mixpath (no settings in it)")
    return SearchConfig.from_json(state["config"], path)


class SearchSession:
    """One search in progress; see the module docstring. Searchers use the public methods only."""

    def __init__(
        self,
        algorithm: str,
        space: SearchSpace,
        m: int,
        evaluator: Evaluator,
        config: SearchConfig,
        *,
        cost_model: CostFunction | None = None,
        state_dir: str | Path | None = None,
        resume: bool = False,
        overwrite: bool = False,
        progress: bool = False,
    ) -> None:
        if not isinstance(evaluator, Evaluator):
            raise MixPathError(f"{type(evaluator).__name__} is not an evaluator: it needs evaluate(archs)")
        self.algorithm = algorithm
        self.space = space
        self.m = space.check_m(m)
        self.evaluator = evaluator
        self.config = config
        self.cost_model = cost_model
        self.state_path = Path(state_dir) / STATE_FILE if state_dir is not None else None
        self.records: list[EvaluatedArch] = []
        self.history: list[dict[str, Any]] = []
        self.score_seconds = 0.0
        """Wall-clock seconds spent in the evaluator's calls so far, a resumed search's included."""
        self.reference: dict[str, float] = {}
        self.algorithm_state: dict[str, Any] | None = None
        self._by_arch: dict[Architecture, EvaluatedArch] = {}
        self._rejected: set[Architecture] = set()
        if self.state_path is not None and not resume and not overwrite:
            earlier = [name for name in (STATE_FILE, RESULTS_FILE) if (self.state_path.parent / name).exists()]
            if earlier:
                raise MixPathError(
                    f"{self.state_path.parent} holds an earlier search ({earlier[0]}): --resume to continue it, "
                    "--overwrite to replace it, or --out another folder"
                )
        if resume and self.state_path is not None and self.state_path.exists():
            remove_stale_temp_files(self.state_path)
            self._load()
        else:
            if resume:
                logger.info("no search state to resume in %s; starting a new search", state_dir)
            self.reference = self._initial_reference()
        self._bar = tqdm(
            total=config.budget,
            initial=min(len(self.records), config.budget),
            unit="arch",
            desc=f"{algorithm} search",
            disable=not progress,
        )

    @property
    def generation(self) -> int:
        """Completed generations."""
        return len(self.history)

    @property
    def remaining(self) -> int:
        """Evaluations left in the budget."""
        return max(0, self.config.budget - len(self.records))

    def seen(self, arch: Architecture) -> bool:
        return arch in self._by_arch or arch in self._rejected

    def admissible(self, arch: Architecture) -> bool:
        """Valid (else MixPathError: a searcher bug), unseen, and within the cost constraints."""
        self.space.validate(arch, self.m)
        if self.seen(arch):
            return False
        if self._costs(arch) is None:
            self._rejected.add(arch)
            return False
        return True

    def draw(
        self,
        n: int,
        propose: Callable[[], Architecture],
        avoid: Collection[Architecture] = (),
        max_tries: int | None = None,
    ) -> list[Architecture]:
        """Up to ``n`` distinct admissible proposals not in ``avoid``, from at most ``max_tries`` calls
        of ``propose`` (default ``BASE_TRIES + TRIES_PER_ARCH * n``): rejection sampling with a bounded number of
        re-draws."""
        if n <= 0:
            return []
        max_tries = BASE_TRIES + TRIES_PER_ARCH * n if max_tries is None else max_tries
        chosen: list[Architecture] = []
        for _ in range(max_tries):
            if len(chosen) >= n:
                break
            arch = propose()
            if arch not in avoid and arch not in chosen and self.admissible(arch):
                chosen.append(arch)
        if not chosen and not self.records and self._rejected:
            limits = ", ".join(f"{name} <= {limit:g}" for name, limit in self.config.constraints.items())
            raise MixPathError(
                f"none of {len(self._rejected)} architectures drawn from {self.space.name} meets the constraints "
                f"({limits}): nothing to search"
            )
        if len(chosen) < n:
            logger.warning("%s: found %d of %d new admissible architectures", self.algorithm, len(chosen), n)
        return chosen

    def evaluate(self, archs: Sequence[Architecture]) -> list[EvaluatedArch | None]:
        """Score ``archs`` with one evaluator call; aligned with ``archs``: the record (cached if seen
        before), or None for a cost-rejected architecture or one beyond the budget."""
        out: list[EvaluatedArch | None] = [None] * len(archs)
        pending: dict[Architecture, list[int]] = {}
        pending_costs: list[dict[str, float]] = []
        for i, arch in enumerate(archs):
            self.space.validate(arch, self.m)
            if arch in self._by_arch:
                out[i] = self._by_arch[arch]
            elif arch in pending:
                pending[arch].append(i)
            elif arch not in self._rejected and len(pending) < self.remaining:
                costs = self._costs(arch)
                if costs is None:
                    self._rejected.add(arch)
                    continue
                pending[arch] = [i]
                pending_costs.append(costs)
        if not pending:
            return out
        scored = self._score(list(pending))
        if len(scored) != len(pending):
            raise MixPathError(f"the evaluator returned {len(scored)} results for {len(pending)} architectures")
        for (arch, indices), costs, metrics in zip(pending.items(), pending_costs, scored, strict=True):
            merged = {**costs, **{name: float(value) for name, value in metrics.items()}}
            for name in (*self.config.objectives, *self.config.constraints):
                metric(merged, name)
            record = EvaluatedArch(arch, merged, satisfies(merged, self.config.constraints), self.generation + 1)
            self.records.append(record)
            self._by_arch[arch] = record
            for i in indices:
                out[i] = record
        self._bar.update(min(len(self.records), self.config.budget) - self._bar.n)
        return out

    def _score(self, archs: list[Architecture]) -> list[dict[str, float]]:
        """One evaluator call, with the evaluator's ``on_scored`` hook (when it has one) moving the bar."""
        started = time.perf_counter()
        try:
            if not hasattr(self.evaluator, "on_scored"):
                return self.evaluator.evaluate(archs)
            self.evaluator.on_scored = lambda arch: self._bar.update()
            try:
                return self.evaluator.evaluate(archs)
            finally:
                self.evaluator.on_scored = None
        finally:
            self.score_seconds += time.perf_counter() - started

    def end_generation(self, algorithm_state: dict[str, Any]) -> None:
        """Close a generation: history entry, log line, progress bar, state file."""
        complete = set(self.reference) == set(self.config.objectives)
        if not complete and self.records:
            self._reference_from_records()
            complete = True
        result = self.result()
        entry = {
            "generation": self.generation + 1,
            "evaluated": len(self.records),
            "rejected": len(self._rejected),
            "front_size": len(result.front),
            "hypervolume": result.hypervolume() if complete else 0.0,
            "cost_seconds": sum(r.metrics.get("cost_seconds", 0.0) for r in self.records),
            "score_seconds": round(self.score_seconds, 2),
        }
        self.history.append(entry)
        self.algorithm_state = algorithm_state
        logger.info(
            "%s generation %d: %d evaluated, %d rejected by cost, front %d, hypervolume %.6g",
            self.algorithm,
            entry["generation"],
            entry["evaluated"],
            entry["rejected"],
            entry["front_size"],
            entry["hypervolume"],
        )
        self._bar.set_postfix(gen=entry["generation"], hv=f"{entry['hypervolume']:.4g}")
        if self.state_path is not None:
            write_json(self.state_path, self._state(), indent=None)

    def result(self) -> SearchResult:
        return SearchResult(
            self.algorithm,
            self.space,
            self.m,
            self.config,
            list(self.records),
            list(self.history),
            dict(self.reference),
        )

    def close(self) -> None:
        self._bar.close()

    def _costs(self, arch: Architecture) -> dict[str, float] | None:
        """The cost model's metrics, {} without a cost model, None when a cost constraint fails."""
        if self.cost_model is None:
            return {}
        costs = {name: float(value) for name, value in self.cost_model(arch).items()}
        bounded = {name: limit for name, limit in self.config.constraints.items() if name in costs}
        return costs if satisfies(costs, bounded) else None

    def _initial_reference(self) -> dict[str, float]:
        reference = {}
        largest = self.space.largest_architecture(self.m)
        largest_costs = dict(self.cost_model(largest)) if self.cost_model is not None else {}
        for name in self.config.objectives:
            if name in self.config.reference:
                reference[name] = self.config.reference[name]
            elif name in self.config.maximise:  # its bad side is 0, as for accuracy (a bound is its good side)
                reference[name] = 0.0
            elif name in self.config.constraints:
                reference[name] = self.config.constraints[name]
            elif name in MAXIMISED:
                reference[name] = 0.0
            elif name in largest_costs:
                reference[name] = float(largest_costs[name])
        return reference

    def _reference_from_records(self) -> None:
        for name in self.config.objectives:
            if name not in self.reference:
                self.reference[name] = max(r.metrics[name] for r in self.records)
                logger.info("hypervolume reference %s=%g: the largest evaluated so far", name, self.reference[name])

    def _state(self) -> dict[str, Any]:
        return {
            "version": _STATE_VERSION,
            "algorithm": self.algorithm,
            "space": self.space.name,
            "m": self.m,
            "config": self.config.to_json(),
            "reference": self.reference,
            "history": self.history,
            "evaluated": [r.to_json(self.space) for r in self.records],
            "rejected": sorted(self.space.format(a) for a in self._rejected),
            "algorithm_state": self.algorithm_state,
        }

    @contextlib.contextmanager
    def restoring(self) -> Iterator[None]:
        """Around a searcher's reading of its own saved state (``algorithm_state``): a state that does not fit
        the searcher is one line naming the state file, not an error from the depths of the algorithm."""
        try:
            yield
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
            detail = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
            raise MixPathError(f"{self.state_path} is not a search state written by mixpath ({detail})") from None

    def _load(self) -> None:
        assert self.state_path is not None
        state = read_json(self.state_path)
        try:
            self._restore(state)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise MixPathError(f"{self.state_path} is not a search state written by mixpath ({err!r})") from None
        logger.info(
            "resuming %s after generation %d (%d evaluated)", self.algorithm, self.generation, len(self.records)
        )

    def _restore(self, state: dict[str, Any]) -> None:
        if state.get("version") != _STATE_VERSION:
            raise MixPathError(f"{self.state_path} has state version {state.get('version')!r}, expected 1")
        theirs = {**state["config"], "budget": self.config.budget}
        mine = self.config.to_json()
        for key, ours, saved in (
            ("algorithm", self.algorithm, state["algorithm"]),
            ("space", self.space.name, state["space"]),
            ("m", self.m, state["m"]),
            *((f"config {k}", mine[k], theirs.get(k)) for k in mine),
        ):
            if ours != saved:
                raise MixPathError(
                    f"cannot resume {self.state_path}: it was made with {key}={saved!r}, this run asks {ours!r}"
                )
        self.reference = {k: float(v) for k, v in state["reference"].items()}
        self.history = state["history"]
        if not isinstance(self.history, list) or not all(isinstance(entry, dict) for entry in self.history):
            raise TypeError("its history is not a list of generations")
        self.score_seconds = float(self.history[-1].get("score_seconds", 0.0)) if self.history else 0.0
        if not isinstance(state["evaluated"], list) or not isinstance(state["rejected"], list):
            raise TypeError("its evaluated and rejected architectures are not lists")
        self.records = [EvaluatedArch.from_json(e, self.space, self.m) for e in state["evaluated"]]
        self._by_arch = {r.arch: r for r in self.records}
        if len(self._by_arch) < len(self.records):
            raise ValueError("it lists an architecture as evaluated twice")
        self._rejected = {self.space.parse(text, self.m) for text in state["rejected"]}
        self.algorithm_state = state["algorithm_state"]
