"""How results look on the terminal: aligned ``label: value`` lines with units, or JSON for programs."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import typer

UNITS = {
    "accuracy": "%",
    "val_acc": "%",
    "test_acc": "%",
    "loss": "(mean cross-entropy)",
    "flops": "M multiply-adds",
    "params": "M params",
    "latency": "ms per image",
}
"""Units of the metrics mixpath reports (``mixpath.interfaces`` defines them)."""


def aligned(pairs: Sequence[tuple[str, str]]) -> list[str]:
    """``label: value`` lines with the values in one column."""
    width = max((len(label) for label, _ in pairs), default=0) + 1
    return [f"{label + ':':<{width}} {value}" for label, value in pairs]


def metric_pairs(metrics: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every metric with its unit; numbers to 4 significant digits."""
    return [
        (key, f"{value:.4g} {UNITS.get(key, '')}".rstrip() if isinstance(value, float) else str(value))
        for key, value in metrics.items()
    ]


def supernet_pairs(last: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The last epoch of a supernet training (a row of metrics.csv) in words: loss and accuracy on its augmented
    training batches, and the mean validation accuracy of the few subnets it samples (trained BN statistics)."""
    return [
        ("epochs trained", str(last.get("epoch"))),
        ("train loss", f"{last.get('train_loss')} (cross-entropy)"),
        ("train accuracy", f"{last.get('train_acc')} %"),
        ("sampled subnets", f"{last.get('val_acc_sampled')} % validation accuracy"),
        ("speed", f"{last.get('images_per_s')} images/s"),
    ]


def echo_lines(pairs: Sequence[tuple[str, str]]) -> None:
    for line in aligned(pairs):
        typer.echo(line)


def echo_json(summary: Any) -> None:
    """The summary as indented JSON on stdout, alone, so that a program can read it whole."""
    typer.echo(json.dumps(summary, indent=2))
