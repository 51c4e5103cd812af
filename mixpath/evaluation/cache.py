"""Scores remembered across searches: one JSON line per evaluated architecture in the run folder.

A line holds the architecture string, a ``key`` naming everything the score depends on (the weights,
the calibration and validation images, the calibration settings) and the metrics. Lines are appended
one at a time with ``mixpath.io.append_line``, so a killed search loses at most the line being written (a
torn last line is dropped, the rule of every appended file). Lines with another key (retrained weights,
other calibration settings) stay in the file but are not used.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

from mixpath.errors import MixPathError
from mixpath.io import append_line, read_lines

log = logging.getLogger(__name__)


def fingerprint(tensors: Iterable[tuple[str, torch.Tensor]], settings: Mapping[str, object]) -> str:
    """A short hash of named tensors (names, shapes, dtypes, bytes) and JSON-able settings."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(json.dumps(dict(settings), sort_keys=True).encode())
    for name, tensor in tensors:
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{tuple(data.shape)}:{data.dtype}".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class EvalCache:
    """Metrics by architecture string for one ``key``, backed by the JSON-lines file ``path``."""

    def __init__(self, path: Path | str, key: str) -> None:
        self.path = Path(path)
        self.key = key
        self._metrics: dict[str, dict[str, float]] = {}
        if self.path.exists():
            self._read()

    def __len__(self) -> int:
        return len(self._metrics)

    def get(self, arch: str) -> dict[str, float] | None:
        metrics = self._metrics.get(arch)
        return dict(metrics) if metrics is not None else None

    def put(self, arch: str, metrics: Mapping[str, float]) -> None:
        """Remember ``metrics`` and append them to the file as one durable line."""
        self._metrics[arch] = {name: float(value) for name, value in metrics.items()}
        try:
            append_line(self.path, json.dumps({"arch": arch, "key": self.key, "metrics": self._metrics[arch]}))
        except OSError as err:
            raise MixPathError(f"cannot write the evaluation cache {self.path}: {err}") from None

    def _read(self) -> None:
        try:
            lines = read_lines(self.path)
        except OSError as err:
            raise MixPathError(f"cannot read the evaluation cache {self.path}: {err}") from None
        skipped = 0
        for line in lines:
            if not line.strip():
                continue
            entry = _entry(line)
            if entry is None:
                skipped += 1
            elif entry[1] == self.key:
                self._metrics[entry[0]] = entry[2]
        if skipped:
            log.warning("%s: skipped %d unreadable line(s)", self.path, skipped)
        log.info("%s: %d cached scores for this supernet and settings", self.path, len(self._metrics))


def _entry(line: str) -> tuple[str, str, dict[str, float]] | None:
    """(arch, key, metrics) of one cache line, or None when the line is not one (a line written by something
    else, or damaged): such a line is skipped, and its architecture scored again."""
    try:
        entry = json.loads(line)
    except (ValueError, RecursionError):  # malformed, nested past the recursion limit, too many digits
        return None
    if not isinstance(entry, dict):
        return None
    arch, key, metrics = entry.get("arch"), entry.get("key"), entry.get("metrics")
    if not isinstance(arch, str) or not isinstance(key, str) or not isinstance(metrics, dict):
        return None
    try:
        return arch, key, {name: _number(value) for name, value in metrics.items()}
    except (TypeError, OverflowError):
        return None


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{value!r} is not a number")
    return float(value)
