"""What a search returns: every evaluated architecture, the Pareto front, the hypervolume history.

``save(dir)`` writes::

    evaluated.csv / evaluated.json   every evaluated architecture in evaluation order, all metrics
    front.csv / front.json           the feasible non-dominated ones, sorted by the last objective
    history.json                     the search (algorithm, space, m, config, reference point) and
                                     one entry per generation (evaluated so far, front size, hypervolume)

Architectures are stored as their canonical string (``space.format``) and read back with ``space.parse``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from mixpath.errors import MixPathError
from mixpath.io import write_text
from mixpath.search.config import SearchConfig
from mixpath.search.objectives import minimised
from mixpath.search.pareto import hypervolume, non_dominated
from mixpath.spaces import Architecture, SearchSpace

RESULTS_FILE = "history.json"
"""The file ``save`` writes last: a folder holding it holds a finished search's results."""
_METRIC_ORDER = ("accuracy", "flops", "params", "latency", "cost_seconds")
_UNITS = {"accuracy": "accuracy (%)", "flops": "FLOPs (M multiply-adds)", "params": "parameters (M)"}


@dataclass(frozen=True)
class EvaluatedArch:
    """One scored architecture: its metrics, whether it met the constraints, the generation (from 1)."""

    arch: Architecture
    metrics: dict[str, float]
    feasible: bool
    generation: int

    def to_json(self, space: SearchSpace) -> dict[str, Any]:
        return {
            "arch": space.format(self.arch),
            "generation": self.generation,
            "feasible": self.feasible,
            "metrics": dict(self.metrics),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], space: SearchSpace, m: int) -> EvaluatedArch:
        return cls(
            space.parse(data["arch"], m),
            {k: float(v) for k, v in data["metrics"].items()},
            bool(data["feasible"]),
            int(data["generation"]),
        )


@dataclass
class SearchResult:
    """The outcome of one search; ``front`` and ``hypervolume`` use ``config.objectives``."""

    algorithm: str
    space: SearchSpace
    m: int
    config: SearchConfig
    evaluated: list[EvaluatedArch]
    history: list[dict[str, Any]] = field(default_factory=list)
    reference: dict[str, float] = field(default_factory=dict)

    @cached_property
    def front(self) -> list[EvaluatedArch]:
        """Feasible, non-dominated evaluated architectures, sorted by the last objective, then the others."""
        feasible = [e for e in self.evaluated if e.feasible]
        if not feasible:
            return []
        F = self._objective_matrix(feasible)
        on_front = np.flatnonzero(non_dominated(F))
        order = on_front[np.lexsort(F[on_front].T)]
        return [feasible[i] for i in order]

    def hypervolume(self, reference: dict[str, float] | None = None) -> float:
        """Hypervolume of the front against ``reference`` (metric units; default: the search's own)."""
        reference = self.reference if reference is None else reference
        missing = [name for name in self.config.objectives if name not in reference]
        if missing:
            raise MixPathError(f"hypervolume needs a reference value for {missing[0]!r}")
        point = minimised(reference, self.config.objectives, self.config.maximise)
        return hypervolume(self._objective_matrix(self.front), point)

    def save(self, directory: str | Path) -> Path:
        """Write the five result files (see the module docstring) into ``directory``; returns it."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name, entries in (("evaluated", self.evaluated), ("front", self.front)):
            write_text(directory / f"{name}.json", _dumps([e.to_json(self.space) for e in entries]))
            write_text(directory / f"{name}.csv", self._csv(entries))
        info = {
            "algorithm": self.algorithm,
            "space": self.space.name,
            "m": self.m,
            "config": self.config.to_json(),
            "reference": self.reference,
            "generations": self.history,
        }
        write_text(directory / RESULTS_FILE, _dumps(info))
        return directory

    @classmethod
    def load(cls, directory: str | Path, space: SearchSpace) -> SearchResult:
        """Read a result written by ``save``; ``space`` must be the one searched."""
        directory = Path(directory)
        try:
            info = json.loads((directory / RESULTS_FILE).read_text())
            entries = json.loads((directory / "evaluated.json").read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise MixPathError(f"cannot read search results in {directory}: {err}") from None
        try:
            if info["space"] != space.name:
                raise MixPathError(f"results in {directory} are for space {info['space']!r}, not {space.name!r}")
            m = int(info["m"])
            return cls(
                info["algorithm"],
                space,
                m,
                SearchConfig.from_json(info["config"]),
                [EvaluatedArch.from_json(e, space, m) for e in entries],
                info["generations"],
                info["reference"],
            )
        except (KeyError, TypeError, ValueError) as err:
            raise MixPathError(f"{directory} does not hold search results written by mixpath ({err!r})") from None

    def plot(self, path: str | Path) -> Path:
        """PNG of the first objective against the second (accuracy against FLOPs by default), every
        evaluated architecture as a dot, infeasible ones as crosses, the front highlighted and connected,
        constraint limits on the plotted metrics dashed. With one objective, the x axis is the
        evaluation index."""
        objectives = self.config.objectives
        y_name = objectives[0]
        x_name = objectives[1] if len(objectives) > 1 else None
        fig = Figure(figsize=(6.4, 4.8), dpi=120)
        ax = fig.add_subplot()

        def xs(entries: list[EvaluatedArch]) -> list[float]:
            if x_name is None:
                index = {id(e): i for i, e in enumerate(self.evaluated)}
                return [index[id(e)] for e in entries]
            return [e.metrics[x_name] for e in entries]

        def ys(entries: list[EvaluatedArch]) -> list[float]:
            return [e.metrics[y_name] for e in entries]

        feasible = [e for e in self.evaluated if e.feasible]
        infeasible = [e for e in self.evaluated if not e.feasible]
        ax.scatter(xs(feasible), ys(feasible), s=12, c="0.6", label=f"evaluated ({len(feasible)})")
        if infeasible:
            ax.scatter(xs(infeasible), ys(infeasible), s=12, c="0.8", marker="x", label="infeasible")
        front = sorted(self.front, key=lambda e: xs([e])[0])
        ax.plot(xs(front), ys(front), "o-", c="tab:red", ms=5, label=f"Pareto front ({len(front)})")
        for name, limit in self.config.constraints.items():
            line = ax.axvline if name == x_name else ax.axhline if name == y_name else None
            if line is not None:
                line(limit, ls="--", c="0.3", lw=1, label=f"{name} limit {limit:g}")
        ax.set_xlabel(_UNITS.get(x_name, x_name) if x_name else "evaluation")
        ax.set_ylabel(_UNITS.get(y_name, y_name))
        ax.set_title(f"{self.algorithm} on {self.space.name} (m={self.m})")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png")
        return path

    def _objective_matrix(self, entries: list[EvaluatedArch]) -> np.ndarray:
        n_obj = len(self.config.objectives)
        matrix = [minimised(e.metrics, self.config.objectives, self.config.maximise) for e in entries]
        return np.array(matrix).reshape(-1, n_obj)

    def _csv(self, entries: list[EvaluatedArch]) -> str:
        names = {name for e in self.evaluated for name in e.metrics}
        columns = [n for n in _METRIC_ORDER if n in names] + sorted(names - set(_METRIC_ORDER))
        index = {id(e): i for i, e in enumerate(self.evaluated)}
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["index", "generation", "arch", "feasible", *columns])
        for e in entries:
            row = [index[id(e)], e.generation, self.space.format(e.arch), int(e.feasible)]
            writer.writerow(row + [e.metrics.get(name, "") for name in columns])
        return out.getvalue()


def _dumps(data: Any) -> str:
    return json.dumps(data, indent=1) + "\n"
