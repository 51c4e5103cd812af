"""The two things a search asks of the rest of mixpath: an evaluator of architectures and a cost function.

Search knows nothing of torch modules, so these are plain Python types that any stage can implement without
importing the search (and pymoo with it): ``mixpath.evaluation.SupernetEvaluator`` (a trained supernet),
``mixpath.benchmarks_nas.TableEvaluator`` (a benchmark table) or any user object evaluate architectures;
``mixpath.evaluation.CostModel`` (per-layer FLOPs, params and latency tables) is the cost function.

Metric names and units used across mixpath:

- ``accuracy``: percent, higher is better (validation accuracy during search)
- ``flops``: millions of multiply-adds of the stand-alone model, lower is better
- ``params``: millions of parameters, lower is better
- ``latency``: milliseconds per image on the measuring device, lower is better
- ``cost_seconds``: what obtaining the score cost (training time for a benchmark table), for budgets

An evaluator may return any subset plus extra metrics; a search needs its objectives and constrained
metrics from it or from a cost function. Cheap metrics get their own optional path so constraints are
checked *before* the expensive accuracy: ``Searcher.run(..., cost_model=f)`` with a ``CostFunction`` ``f``.
A candidate over a cost limit is then rejected without ever reaching ``evaluate``; without a cost function
constraints are judged on the metrics ``evaluate`` returns, so infeasible candidates cost an evaluation and
are kept as infeasible. When both give a metric, the evaluator's value is recorded. ``evaluate`` receives a
whole generation at once, so an implementation may batch or shard it.

A generation of supernet scores takes minutes, so an evaluator that scores one architecture after another
may have an ``on_scored`` attribute (None, or a function it calls with each architecture once its metrics
are known; ``SupernetEvaluator`` has one). The search sets it for each ``evaluate`` call, and its progress
bar then moves per architecture instead of per generation; what is evaluated does not change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from mixpath.spaces import Architecture


@runtime_checkable
class Evaluator(Protocol):
    def evaluate(self, archs: Sequence[Architecture]) -> list[dict[str, float]]:
        """Return one dict of metrics per architecture, in order."""
        ...


CostFunction = Callable[[Architecture], Mapping[str, float]]
"""Cheap metrics of one architecture (``flops``, ``params``, ``latency``) without scoring its accuracy."""
