"""FBNet (Wu et al., CVPR 2019): a differentiable supernet, trained by ``mixpath train --strategy fbnet``.

Every searchable layer holds learnable architecture parameters theta, one per *candidate*: a single-path
choice of the layer (op x options, e.g. ``e6:k5``; FairNAS's choices). In a forward pass each layer outputs
the sum of all its candidates' outputs weighted by a Gumbel-softmax sample of its theta at temperature tau,
``w = softmax((theta + g) / tau)``, so the loss is differentiable in theta. An epoch is FBNet's two phases:

1. weight steps: SGD (the run's recipe: linear warm-up, then cosine over these steps) on the training split
   minus a held-out part (``held_out``, seeded), with w drawn and not differentiated;
2. architecture steps: Adam (``arch_lr``, weight decay 5e-4, FBNet's) on theta, one pass over the held-out
   part, minimising FBNet's loss ``CE(a, w) * alpha * log(LAT(a)) ** beta``.

LAT(a) is the expected cost of the sampled mixture, ``fixed + sum_l sum_i w_li * cost_li``: milliseconds from
the run's latency table (``latency_table``, ``mixpath.evaluation.latency``; its ``scale`` applies), else
FLOPs (multiply-adds) from ``CostModel``. For one-hot w it is the table's value of that architecture. The log
is taken of microseconds (latency) or multiply-adds (FLOPs), so that it is positive for any real network.
The temperature is ``temperature * temperature_decay ** epoch`` (FBNet: 5.0, decayed by 0.956 per epoch).

Every Gumbel draw is seeded by (seed, epoch, step), theta and its Adam state are in the checkpoint, so a
killed run resumes to exactly the uninterrupted result. After every epoch ``RUN/fbnet.json`` holds theta's
probabilities, the argmax architecture and the derived one (``derive``); ``mixpath search RUN --algo fbnet``
scores the derived architecture and samples more from the learned distribution (FBNet's final step).
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from mixpath import distributed
from mixpath.data import Data
from mixpath.errors import MixPathError
from mixpath.evaluation.costs import CostModel
from mixpath.evaluation.latency import RUN_FILE, LatencyTable, layer_choices
from mixpath.io import write_csv, write_json
from mixpath.spaces import Architecture, LayerChoice, SearchSpace
from mixpath.supernet.network import MBConvSupernet
from mixpath.training.checkpoint import load_checkpoint, restoring
from mixpath.training.config import TrainConfig
from mixpath.training.heldout import split_held_out
from mixpath.training.schedule import cosine_lr
from mixpath.training.seeding import torch_generator
from mixpath.training.step import TrainState

log = logging.getLogger("mixpath.train")

FBNET_FILE = "fbnet.json"
ARCH_WEIGHT_DECAY = 5e-4
"""FBNet's weight decay of theta (Adam)."""
_UNIT_FACTOR = {"ms": 1000.0, "M MACs": 1e6}
"""What one unit of a cost is in the unit FBNet's log is taken of: microseconds, multiply-adds."""


def layer_candidates(space: SearchSpace) -> list[list[LayerChoice]]:
    """Every layer's candidates: its single-path choices (op x options), in the latency table's order."""
    return [layer_choices(spec, 1) for spec in space.layers]


@dataclass(frozen=True)
class CandidateCosts:
    """The cost of every candidate of every layer and of the fixed rest, in ``unit`` (``ms`` or ``M MACs``)."""

    unit: str
    fixed: float
    layers: tuple[tuple[float, ...], ...]
    scale: float = 1.0

    def expected(self, weights: Sequence[torch.Tensor]) -> torch.Tensor:
        """FBNet's LAT(a) of the mixture ``weights`` (one vector per layer): differentiable in them, and for
        one-hot weights the table's value of that architecture."""
        total = weights[0].new_tensor(self.fixed, dtype=torch.float64)
        for w, costs in zip(weights, self.layers, strict=True):
            total = total + (w.double() * w.new_tensor(costs, dtype=torch.float64)).sum()
        return self.scale * total

    def loss_factor(self, weights: Sequence[torch.Tensor], alpha: float, beta: float) -> torch.Tensor:
        """``alpha * log(LAT(a)) ** beta``, the log taken of microseconds or multiply-adds."""
        return alpha * torch.log(self.expected(weights) * _UNIT_FACTOR[self.unit]) ** beta


def candidate_costs(
    space: SearchSpace, candidates: list[list[LayerChoice]], table: LatencyTable | None
) -> CandidateCosts:
    """Costs of the candidates: the latency table's milliseconds, else FLOPs (millions of multiply-adds)."""
    if table is not None:
        table.check_space(space)
        try:
            layers = tuple(
                tuple(entries[str(choice)] for choice in layer)
                for entries, layer in zip(table.layers, candidates, strict=True)
            )
        except KeyError as err:
            raise MixPathError(f"the latency table of {table.space!r} has no entry {err}") from None
        return CandidateCosts("ms", table.fixed, layers, table.scale)
    costs = CostModel(space)
    reference = Architecture(tuple(layer[0] for layer in candidates))
    base = costs.counts(reference)[0]

    def macs(index: int, choice: LayerChoice) -> float:
        layers = list(reference.layers)
        layers[index] = choice
        return (costs.counts(Architecture(tuple(layers)))[0] - base) / 1e6

    return CandidateCosts(
        "M MACs", base / 1e6, tuple(tuple(macs(i, c) for c in layer) for i, layer in enumerate(candidates))
    )


def gumbel_weights(theta: Sequence[torch.Tensor], temperature: float, generator: torch.Generator) -> list[torch.Tensor]:
    """One Gumbel-softmax sample per layer, ``softmax((theta + g) / temperature)``, the noise from ``generator``."""
    out = []
    for t in theta:
        u = torch.rand(t.shape, generator=generator, dtype=torch.float64).clamp_(1e-12, 1 - 1e-12)
        g = (-torch.log(-torch.log(u))).to(t.device, t.dtype)
        out.append(F.softmax((t + g) / temperature, dim=0))
    return out


def mixed_forward(
    supernet: nn.Module, x: torch.Tensor, weights: Sequence[torch.Tensor], candidates: list[list[LayerChoice]]
) -> torch.Tensor:
    """The FBNet supernet's forward: each layer's candidates' outputs summed with the layer's ``weights``."""
    net = cast(MBConvSupernet, supernet)
    x = net.stem_features(x)
    for layer, w, choices in zip(net.layers, weights, candidates, strict=True):
        outputs = [w[i] * layer(x, choice) for i, choice in enumerate(choices)]
        x = torch.stack(outputs).sum(0) if len(outputs) > 1 else outputs[0]
    return net.head(x)


def temperature(config: TrainConfig, epoch: int) -> float:
    """The Gumbel-softmax temperature of ``epoch`` (0-based): ``temperature * temperature_decay ** epoch``."""
    return config.temperature * config.temperature_decay**epoch


def derive(
    space: SearchSpace, candidates: list[list[LayerChoice]], probabilities: Sequence[Sequence[float]], m: int
) -> Architecture:
    """The architecture theta chose. With ``m == 1``, FBNet's: every layer's most probable candidate. With
    ``m > 1`` (a multi-path variant no paper has run) the most probable candidate's options, and its op joined by
    every other op whose probability (summed over the options) exceeds uniform (1 / ops), most probable first,
    up to ``m`` ops."""
    layers = []
    for spec, choices, probs in zip(space.layers, candidates, probabilities, strict=True):
        best = choices[max(range(len(choices)), key=lambda i: probs[i])]
        ops = [best.paths[0]]
        if m > 1:
            marginal = {op: sum(p for c, p in zip(choices, probs, strict=True) if c.paths[0] == op) for op in spec.ops}
            likely = [op for op in sorted(spec.ops, key=lambda op: -marginal[op]) if marginal[op] > 1 / spec.n_ops]
            ops += [op for op in likely if op not in ops][: m - 1]
        layers.append(LayerChoice.of(ops, **dict(best.options)))
    return Architecture(tuple(layers))


def check_fbnet(config: TrainConfig, space: SearchSpace) -> None:
    """What strategy fbnet needs, checked before anything is written."""
    if space.family != "mbconv":
        raise MixPathError(f"strategy fbnet mixes inverted-bottleneck layers: space {space.name!r} is {space.family!r}")
    space.check_m(config.m)
    if config.amp != "off" or config.micro_batches != 1:
        raise MixPathError(
            "strategy fbnet trains in full precision without micro-batches: drop --amp and --micro-batches"
        )
    if config.latency_table is not None:
        LatencyTable.load(config.latency_table).check_space(space)


@dataclass
class _ArchSums:
    """The architecture phase of the epoch in progress, summed over its images."""

    loss: float = 0.0
    ce: float = 0.0
    cost: float = 0.0
    seen: int = 0


def train_fbnet(
    config: TrainConfig,
    run_dir: Path,
    device: torch.device,
    progress: bool,
    dataset: Data,
    space: SearchSpace,
    stop_after_steps: int | None,
) -> Any:
    """``_train`` for strategy fbnet: the same run folder, checkpoint, metrics and resume, FBNet's two phases."""
    from mixpath.training.trainer import TrainResult, _checkpoint_due, end_epoch, save, start_or_resume

    if distributed.world_size() > 1:
        raise MixPathError("strategy fbnet runs in one process (torchrun is for mixpath, spos and fairnas)")
    weights_part, held_out = split_held_out(dataset.train, config.held_out, config.seed)
    weights_part, held_out = weights_part.to(device), held_out.to(device)
    n_weight, n_arch = (part.steps_per_epoch(config.batch_size) for part in (weights_part, held_out))
    if n_weight == 0 or n_arch == 0:
        raise MixPathError(
            f"batch size {config.batch_size} exceeds the {len(weights_part)} training or the {len(held_out)} "
            "held-out images"
        )
    steps_per_epoch = n_weight + n_arch
    candidates = layer_candidates(space)
    table = None
    if config.latency_table is not None:
        copy = run_dir / RUN_FILE
        if not copy.exists():  # the run's own copy: a moved or resumed run does not need the original
            LatencyTable.load(config.latency_table).save(copy)
        table = LatencyTable.load(copy)
    costs = candidate_costs(space, candidates, table)
    state = start_or_resume(config, space, run_dir, device)
    theta = [torch.zeros(len(choices), device=device, requires_grad=True) for choices in candidates]
    arch_optimizer = torch.optim.Adam(theta, lr=config.arch_lr, weight_decay=ARCH_WEIGHT_DECAY)
    sums = _ArchSums()
    path = run_dir / "checkpoint.pt"
    if path.exists():
        saved = load_checkpoint(path, device)
        with restoring(path):
            for t, value in zip(theta, saved["fbnet"]["theta"], strict=True):
                t.data.copy_(value)
            arch_optimizer.load_state_dict(saved["fbnet"]["optimizer"])
            sums = _ArchSums(**saved["fbnet"]["sums"])
    if state.step >= steps_per_epoch or state.epoch > config.epochs or (state.epoch == config.epochs and state.step):
        raise MixPathError(f"checkpoint {path} is at epoch {state.epoch} step {state.step}, outside this run")

    def extra() -> dict[str, Any]:
        return {
            "fbnet": {
                "theta": [t.detach().cpu() for t in theta],
                "optimizer": arch_optimizer.state_dict(),
                "sums": vars(sums).copy(),
            }
        }

    seeds = functools.partial(torch_generator, config.seed)
    arch_seeds = functools.partial(torch_generator, config.seed, "fbnet-held-out")
    total_weight_steps = n_weight * config.epochs
    warmup = round(config.effective_warmup_epochs * n_weight)
    steps_run = 0
    while state.epoch < config.epochs:
        tau = temperature(config, state.epoch)
        weight_batches = weights_part.training_batches(
            config.batch_size, state.epoch, seeds, start_step=min(state.step, n_weight)
        )
        arch_batches: Iterator[tuple[torch.Tensor, torch.Tensor]] | None = None
        state.model.train()
        bar = tqdm(
            total=steps_per_epoch,
            initial=state.step,
            desc=f"epoch {state.epoch + 1}/{config.epochs} fbnet",
            disable=not progress,
            leave=False,
        )
        tick = time.perf_counter()
        try:
            while state.step < steps_per_epoch:
                noise = torch_generator(config.seed, "gumbel", state.epoch, state.step)
                if state.step < n_weight:
                    xb, yb = next(weight_batches)
                    lr = cosine_lr(config.lr, state.epoch * n_weight + state.step, total_weight_steps, warmup)
                    _weight_step(state, config, theta, candidates, xb, yb, tau, noise, lr)
                else:
                    if arch_batches is None:
                        arch_batches = iter(
                            held_out.training_batches(
                                config.batch_size, state.epoch, arch_seeds, start_step=state.step - n_weight
                            )
                        )
                    xb, yb = next(arch_batches)
                    _arch_step(state.model, config, theta, arch_optimizer, candidates, costs, xb, yb, tau, noise, sums)
                    state.step += 1
                steps_run += 1
                now = time.perf_counter()
                state.sums.seconds += now - tick
                tick = now
                bar.update()
                stopping = steps_run == stop_after_steps
                if state.step < steps_per_epoch and (stopping or _checkpoint_due(config, state.step)):
                    save(state, config, run_dir, extra())
                    if stopping:
                        return TrainResult(run_dir, state.metrics, state.model)
        finally:
            bar.close()
        end_epoch(state, config, dataset, space, device)
        _end_epoch(state, config, space, theta, candidates, costs, sums, tau, run_dir)
        sums = _ArchSums()
        save(state, config, run_dir, extra())
        write_csv(run_dir / "metrics.csv", state.metrics)
        if steps_run == stop_after_steps:
            break
    return TrainResult(run_dir, state.metrics, state.model)


def _weight_step(
    state: TrainState,
    config: TrainConfig,
    theta: list[torch.Tensor],
    candidates: list[list[LayerChoice]],
    xb: torch.Tensor,
    yb: torch.Tensor,
    tau: float,
    noise: torch.Generator,
    lr: float,
) -> None:
    """One SGD step of the supernet's weights on the mixture drawn from ``theta`` (not differentiated)."""
    for group in state.optimizer.param_groups:
        group["lr"] = lr
    state.optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        weights = gumbel_weights(theta, tau, noise)
    logits = mixed_forward(state.model, xb, weights, candidates)
    loss = F.cross_entropy(logits, yb, label_smoothing=config.label_smoothing)
    if not math.isfinite(loss.item()):
        raise MixPathError(
            f"loss became {loss.item()} at epoch {state.epoch + 1} step {state.step + 1} (lr {lr:.4g}); "
            "lower --lr or check the data"
        )
    loss.backward()
    if config.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(state.params, config.grad_clip)
    state.optimizer.step()
    state.sums.loss += loss.item() * len(yb)
    state.sums.correct += int((logits.argmax(1) == yb).sum())
    state.sums.seen += len(yb)
    state.step += 1


def _arch_step(
    model: nn.Module,
    config: TrainConfig,
    theta: list[torch.Tensor],
    optimizer: torch.optim.Optimizer,
    candidates: list[list[LayerChoice]],
    costs: CandidateCosts,
    xb: torch.Tensor,
    yb: torch.Tensor,
    tau: float,
    noise: torch.Generator,
    sums: _ArchSums,
) -> None:
    """One Adam step of ``theta`` on FBNet's latency-aware loss (only theta's gradients are computed)."""
    weights = gumbel_weights(theta, tau, noise)
    ce = F.cross_entropy(mixed_forward(model, xb, weights, candidates), yb)
    factor = costs.loss_factor(weights, config.cost_alpha, config.cost_beta)
    loss = ce * factor.to(ce.dtype)
    if not math.isfinite(loss.item()):
        raise MixPathError(f"the architecture loss became {loss.item()}; lower --arch-lr")
    grads = torch.autograd.grad(loss, theta)
    optimizer.zero_grad(set_to_none=True)
    for t, g in zip(theta, grads, strict=True):
        t.grad = g
    optimizer.step()
    sums.loss += loss.item() * len(yb)
    sums.ce += ce.item() * len(yb)
    sums.cost += costs.expected([w.detach() for w in weights]).item() * len(yb)
    sums.seen += len(yb)


def probabilities(theta: Sequence[torch.Tensor]) -> list[list[float]]:
    """softmax(theta) per layer: the learned distribution over each layer's candidates."""
    return [F.softmax(t.detach().double(), dim=0).tolist() for t in theta]


def _end_epoch(
    state: TrainState,
    config: TrainConfig,
    space: SearchSpace,
    theta: list[torch.Tensor],
    candidates: list[list[LayerChoice]],
    costs: CandidateCosts,
    sums: _ArchSums,
    tau: float,
    run_dir: Path,
) -> None:
    """FBNet's part of the epoch's row (after ``end_epoch``'s): temperature, architecture loss, expected cost,
    argmax; and fbnet.json."""
    probs = probabilities(theta)
    argmax = derive(space, candidates, probs, 1)
    derived = derive(space, candidates, probs, config.m)
    one_hot = [
        torch.eye(len(c))[max(range(len(c)), key=lambda i: p[i])] for c, p in zip(candidates, probs, strict=True)
    ]
    state.metrics[-1].update(
        {
            "temperature": round(tau, 5),
            "arch_loss": round(sums.loss / max(1, sums.seen), 5),
            "arch_ce": round(sums.ce / max(1, sums.seen), 5),
            f"expected_cost_{costs.unit.replace(' ', '_')}": round(sums.cost / max(1, sums.seen), 5),
            f"argmax_cost_{costs.unit.replace(' ', '_')}": round(costs.expected(one_hot).item(), 5),
            "argmax": str(argmax),
        }
    )
    write_json(
        run_dir / FBNET_FILE,
        {
            "epoch": state.epoch,
            "temperature": tau,
            "cost_unit": costs.unit,
            "argmax": str(argmax),
            "derived": str(derived),
            "m": config.m,
            "probabilities": [
                {str(c): p for c, p in zip(choices, layer, strict=True)}
                for choices, layer in zip(candidates, probs, strict=True)
            ],
        },
    )
    log.info("fbnet epoch %d: argmax %s, derived %s", state.epoch, argmax, derived)
