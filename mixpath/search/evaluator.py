"""The one thing a searcher knows about scoring: an object that maps architectures to metrics.

A supernet evaluator, a benchmark table or any user function can stand behind it, so the same
searcher runs on all three. Metric names and units used across mixpath:

- ``accuracy``: percent, higher is better (validation accuracy during search)
- ``flops``: millions of multiply-adds of the stand-alone model, lower is better
- ``params``: millions of parameters, lower is better
- ``latency``: milliseconds per image on the measuring device, lower is better
- ``cost_seconds``: what obtaining the score cost (training time for a benchmark table), for budgets

An evaluator may return any subset plus extra metrics; a search needs its objectives and constrained
metrics from it or from a cost model. Cheap metrics get their own optional path so constraints are
checked *before* the expensive accuracy: ``Searcher.run(..., cost_model=f)`` with
``f(arch) -> {"flops": ..., "params": ..., "latency": ...}`` (``mixpath.search.CostModel``). A
candidate over a cost limit is then rejected without ever reaching ``evaluate``; without a cost model
constraints are judged on the metrics ``evaluate`` returns, so infeasible candidates cost an
evaluation and are kept as infeasible. When both give a metric, the evaluator's value is recorded.
``evaluate`` receives a whole generation at once, so an implementation may batch or shard it.

A generation of supernet scores takes minutes, so an evaluator that scores one architecture after another
may have an ``on_scored`` attribute (None, or a function it calls with each architecture once its metrics
are known; ``SupernetEvaluator`` has one). The search sets it for each ``evaluate`` call, and its progress
bar then moves per architecture instead of per generation; what is evaluated does not change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from mixpath.spaces import Architecture


@runtime_checkable
class Evaluator(Protocol):
    def evaluate(self, archs: Sequence[Architecture]) -> list[dict[str, float]]:
        """Return one dict of metrics per architecture, in order."""
        ...
