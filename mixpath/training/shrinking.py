"""BS-NAS's shrinking (Shen et al., "BS-NAS: Broadening-and-Shrinking One-Shot NAS", ECCV 2020) for any sampled
supernet: at scheduled points of the training (``shrink_at``, fractions of its steps) every layer's ops are
scored on a held-out part of the training split and the worst ``shrink_drop`` of each layer are turned off, so
that the sampler trains only the survivors from then on and the search searches only them.

An op's score is the mean one-shot accuracy (trained BN statistics, as the trainer's epoch scores) of the
single-path architectures that use it, drawn in fair rounds: in each round every layer permutes its surviving
ops and architecture i takes the i-th op of every layer (options uniform), so every surviving op is scored the
same number of times (``shrink_archs``, rounded up to whole rounds). Ties drop the op declared later.

The survivors and the scores of every point are in the checkpoint (a resumed run keeps the shrunk space and
draws what an uninterrupted run draws) and in ``RUN/shrunk.json``, from which ``Run.search_space`` (and so
``mixpath search``) takes the space the search runs over; the supernet keeps every op's weights, so any
architecture of the full space can still be evaluated (e.g. for a ranking against a ground truth).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any

from torch import nn

from mixpath.data import BatchSource
from mixpath.errors import MixPathError
from mixpath.evaluation.scoring import score
from mixpath.io import read_json, write_json
from mixpath.spaces import Architecture, LayerChoice, SearchSpace
from mixpath.training.checkpoint import load_checkpoint, restoring
from mixpath.training.config import TrainConfig
from mixpath.training.heldout import split_held_out
from mixpath.training.samplers import Sampler, make_sampler
from mixpath.training.seeding import step_rng
from mixpath.training.step import SCORING_BATCH_SIZE

log = logging.getLogger("mixpath.train")

SHRINK_FILE = "shrunk.json"


def shrunk_space(space: SearchSpace, survivors: list[list[str]]) -> SearchSpace:
    """``space`` with only the ``survivors`` of every layer as its ops (same name, skeleton and options)."""
    layers = tuple(
        dataclasses.replace(spec, ops=tuple(op for op in spec.ops if op in ops))
        for spec, ops in zip(space.layers, survivors, strict=True)
    )
    return dataclasses.replace(space, layers=layers)


def run_search_space(run_dir: Path, space: SearchSpace) -> SearchSpace:
    """The space a search of the run searches: ``space`` shrunk to the survivors in RUN/shrunk.json, if any."""
    path = Path(run_dir) / SHRINK_FILE
    if not path.is_file():
        return space
    data = read_json(path)
    survivors = data.get("survivors") if isinstance(data, dict) else None
    if not isinstance(survivors, list) or len(survivors) != space.n_layers:
        raise MixPathError(f"{path} does not hold the surviving ops of {space.n_layers} layers")
    return shrunk_space(space, survivors)


def check_shrinking(config: TrainConfig, space: SearchSpace) -> None:
    """Every layer must keep at least m ops (and one) after the last point."""
    for index, spec in enumerate(space.layers):
        left = spec.n_ops - config.shrink_drop * len(config.shrink_at)
        if left < max(1, config.m):
            raise MixPathError(
                f"shrinking {len(config.shrink_at)} time(s) by {config.shrink_drop} leaves layer {index} {left} of its "
                f"{spec.n_ops} ops, fewer than m={config.m}: drop fewer or shrink less often"
            )


def op_scores(
    model: nn.Module, space: SearchSpace, held_out: BatchSource, archs: int, point: int, seed: int
) -> list[dict[str, float]]:
    """Every surviving op's mean one-shot accuracy (%) over fair rounds of single-path architectures (see the
    module docstring), drawn from (seed, point)."""
    rng = step_rng(seed, "shrink", point)
    width = max(spec.n_ops for spec in space.layers)
    accuracies: list[dict[str, list[float]]] = [{op: [] for op in spec.ops} for spec in space.layers]
    for _ in range(math.ceil(archs / width)):
        orders = [rng.sample(spec.ops, spec.n_ops) for spec in space.layers]
        for i in range(width):
            arch = Architecture(
                tuple(
                    LayerChoice.of([order[i % len(order)]], **{key: rng.choice(values) for key, values in spec.options})
                    for order, spec in zip(orders, space.layers, strict=True)
                )
            )
            accuracy = score(model, arch, held_out, SCORING_BATCH_SIZE)["accuracy"]
            for layer, choice in zip(accuracies, arch.layers, strict=True):
                layer[choice.paths[0]].append(accuracy)
    return [{op: sum(values) / len(values) for op, values in layer.items()} for layer in accuracies]


def drop_worst(space: SearchSpace, scores: list[dict[str, float]], drop: int) -> list[list[str]]:
    """Every layer's ops without its ``drop`` lowest-scoring ones (a tie drops the op declared later)."""
    survivors = []
    for spec, layer in zip(space.layers, scores, strict=True):
        ranked = sorted(spec.ops, key=lambda op: (layer[op], -spec.ops.index(op)))
        dropped = set(ranked[:drop])
        survivors.append([op for op in spec.ops if op not in dropped])
    return survivors


class Shrinker:
    """The shrinking of one training run: its held-out images, the survivors so far and the points passed.

    ``train`` is the part of the training split the weights train on (without the held-out images)."""

    def __init__(self, config: TrainConfig, space: SearchSpace, train: BatchSource) -> None:
        self.config, self.full_space = config, space
        self.train, self.held_out = split_held_out(train, config.held_out, config.seed)
        self.points: list[int] = []
        self.survivors = [list(spec.ops) for spec in space.layers]
        self.history: list[dict[str, Any]] = []

    @property
    def space(self) -> SearchSpace:
        """The space the sampler draws from now."""
        return shrunk_space(self.full_space, self.survivors)

    def resume(self, checkpoint: Path, total_steps: int) -> Sampler:
        """Place the points in a run of ``total_steps`` steps, take the survivors and points passed from the
        run's ``checkpoint`` when it exists, and return the sampler of the space as it stands."""
        self.points = [round(f * total_steps) for f in self.config.shrink_at]
        if checkpoint.exists():
            saved = load_checkpoint(checkpoint).get("shrinking")
            if saved is not None:
                with restoring(checkpoint):
                    self.survivors = [[str(op) for op in layer] for layer in saved["survivors"]]
                    self.history = list(saved["history"])
        return make_sampler(self.config.strategy, self.space, self.config.m, self.config.path_sampling)

    def checkpoint(self) -> dict[str, Any]:
        """What the checkpoint keeps of the shrinking."""
        return {"shrinking": {"survivors": self.survivors, "history": self.history}}

    def due(self, global_step: int) -> bool:
        """Whether the next point is reached before optimizer step ``global_step`` (0-based) runs."""
        done = len(self.history)
        return done < len(self.points) and self.points[done] <= global_step

    def shrink(self, model: nn.Module, global_step: int, run_dir: Path) -> Sampler:
        """Score the ops, drop every layer's worst, record it (RUN/shrunk.json) and return the new sampler."""
        point = len(self.history)
        space = self.space
        scores = op_scores(model, space, self.held_out, self.config.shrink_archs, point, self.config.seed)
        self.survivors = drop_worst(space, scores, self.config.shrink_drop)
        self.history.append({"step": global_step, "scores": scores, "survivors": self.survivors})
        write_json(run_dir / SHRINK_FILE, {"survivors": self.survivors, "history": self.history})
        log.info("shrink %d at step %d: survivors %s", point + 1, global_step, self.survivors)
        return make_sampler(self.config.strategy, self.space, self.config.m, self.config.path_sampling)
