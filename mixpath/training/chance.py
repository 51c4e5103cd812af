"""Did the supernet learn anything? Its sampled subnets' validation accuracy against chance.

A supernet whose subnets score what guessing scores ranks architectures by noise, and a search on it
returns an arbitrary front that looks like any other. The trainer already measures what tells: after
every epoch, the mean validation accuracy of a few sampled subnets (``val_acc_sampled`` in metrics.csv,
with the trained BN statistics). Within ``CHANCE_MARGIN`` points of chance (100 / classes) after the
last epoch, ``untrained_warning`` says so and what to change; ``mixpath train`` prints it and
``mixpath pipeline`` stops on it before searching.
"""

from __future__ import annotations

import csv
from pathlib import Path

from mixpath.data import class_count
from mixpath.io import read_json
from mixpath.training.config import TrainConfig
from mixpath.training.trainer import CONFIG_FILE, METRICS_FILE

CHANCE_MARGIN = 5.0
"""Accuracy points above chance below which a supernet counts as untrained. The pipeline's one-epoch
Fashion-MNIST supernet reaches ~53 % (chance 10 %); a smoke run's one epoch on 1,000 digits stays near 10 %."""


def untrained_warning(run_dir: Path | str, margin: float = CHANCE_MARGIN) -> str | None:
    """One line saying that the run's supernet learned (almost) nothing and what to change, or None when
    its last epoch's sampled subnets beat chance by more than ``margin`` points (or no epoch finished)."""
    run_dir = Path(run_dir)
    metrics = run_dir / METRICS_FILE
    if not metrics.is_file():
        return None
    with metrics.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not rows[-1].get("val_acc_sampled"):
        return None
    accuracy = float(rows[-1]["val_acc_sampled"])
    config = TrainConfig.from_json(read_json(run_dir / CONFIG_FILE), run_dir / CONFIG_FILE)
    classes = class_count(config.data, config.data_dir)
    chance = 100.0 / classes
    if accuracy > chance + margin:
        return None
    changes = [f"train longer (--epochs, now {config.epochs})"]
    if config.train_subset is not None:
        changes.append(f"on more images (--train-subset, now {config.train_subset})")
    changes.append(f"with another learning rate (--lr, now {config.lr:g})")
    return (
        f"the supernet in {run_dir} learned (almost) nothing: after epoch {rows[-1]['epoch']} its sampled subnets "
        f"reach {accuracy:.1f} % validation accuracy, within {margin:g} points of chance ({chance:.1f} % for "
        f"{classes} classes of {config.data}), so a search on it ranks noise; {', '.join(changes[:-1])} or "
        f"{changes[-1]}"
    )
