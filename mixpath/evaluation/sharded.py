"""Search under torchrun: every rank scores its share of a generation, and all ranks get every score.

Every rank runs the same searcher with the same seed, so every rank proposes the same generation and
calls ``evaluate`` with the same architectures. ``ShardedEvaluator`` gives rank r the architectures at
positions r, r + W, r + 2W, ... (W = world size), scores them with the wrapped evaluator, and gathers
all results back into the original order with ``all_gather_object``. Each rank then holds the full
result, takes the same search decisions, and the search ends exactly as a one-process search ends,
provided the wrapped evaluator scores an architecture independently of which others it scores (true
of ``SupernetEvaluator``: each score recalibrates its BNs from the same fixed images).

Striding rather than cutting contiguous blocks spreads costly neighbours (mutants of one parent tend
to sit together) over the ranks. With one process this wrapper calls the wrapped evaluator directly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from mixpath import distributed
from mixpath.errors import MixPathError
from mixpath.interfaces import Evaluator
from mixpath.spaces import Architecture


class ShardedEvaluator:
    """An ``Evaluator`` that splits each ``evaluate`` call over the ranks of the process group.

    All ranks must call ``evaluate`` together with the same architectures; a rank that got different
    ones (a searcher that is not seeded identically) is detected and every rank raises. An error in one
    rank's share is raised on every rank, so no rank is left waiting for the others.
    """

    def __init__(self, inner: Evaluator) -> None:
        if not callable(getattr(inner, "evaluate", None)):
            raise MixPathError(f"{type(inner).__name__} is not an evaluator: it needs evaluate(archs)")
        self.inner = inner
        distributed.setup()

    @property
    def on_scored(self) -> Callable[[Architecture], None] | None:
        """The wrapped evaluator's per-architecture hook (``mixpath.interfaces``); each rank reports
        the architectures of its own share."""
        return getattr(self.inner, "on_scored", None)

    @on_scored.setter
    def on_scored(self, hook: Callable[[Architecture], None] | None) -> None:
        if hasattr(self.inner, "on_scored"):
            self.inner.on_scored = hook

    def evaluate(self, archs: Sequence[Architecture]) -> list[dict[str, float]]:
        world, rank = distributed.world_size(), distributed.rank()
        if world == 1:
            return self.inner.evaluate(archs)
        share = list(archs[rank::world])
        outcome: tuple[str, str, Any]  # ok, fingerprint, scores; or error, error type, message
        try:
            outcome = ("ok", _fingerprint(archs), self.inner.evaluate(share) if share else [])
        except MixPathError as err:
            outcome = ("error", "MixPathError", str(err))
        except Exception as err:  # any failure must reach the other ranks, or they wait forever
            outcome = ("error", type(err).__name__, str(err))
            distributed.all_gather_object(outcome)
            raise
        gathered: list[tuple[str, str, Any]] = distributed.all_gather_object(outcome)
        for other, (status, *detail) in enumerate(gathered):
            if status == "error":
                if detail[0] == "MixPathError":
                    raise MixPathError(detail[1])
                raise RuntimeError(f"rank {other} failed scoring its share: {detail[0]}: {detail[1]}")
        if len({fingerprint for _, fingerprint, _ in gathered}) != 1:
            raise RuntimeError("ranks were asked to score different architectures: the search is not seeded alike")
        results: list[dict[str, float]] = [{} for _ in archs]
        for other, (_, _, scores) in enumerate(gathered):
            if len(scores) != len(archs[other::world]):
                raise MixPathError(
                    f"the evaluator returned {len(scores)} results for {len(archs[other::world])} architectures"
                )
            results[other::world] = scores
        return results


def _fingerprint(archs: Sequence[Architecture]) -> str:
    return hashlib.sha256("\n".join(str(a) for a in archs).encode()).hexdigest()
