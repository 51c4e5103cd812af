"""The MixPath paper's feature analysis of a trained multi-path supernet (``mbconv`` family).

- ``path_similarity``: cosine similarity between the outputs of single paths and of path combinations in
  one layer (the projected sum of the active depthwise branches, i.e. what the layer's BN normalises),
  per image, averaged over a batch. The zero-order condition of the Shadow BN lemma says single paths
  are nearly equal; combinations then point the same way too.
- ``shadow_bn_statistics``: per layer (and expansion ratio), the running statistics of SBN_k against
  SBN_m, summarised per channel: if k paths sum to ~k times one path, mu(SBN_1)/mu(SBN_2) ~ 0.5 and
  var(SBN_1)/var(SBN_2) ~ 0.25 (paper); and how close the learned gamma and beta of the SBNs are.
- ``oneshot_accuracies``: one-shot accuracy of random architectures drawn with path limit m = 1..M.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from mixpath.errors import MixPathError
from mixpath.spaces import Architecture, SearchSpace
from mixpath.supernet import ShadowBatchNorm
from mixpath.supernet.mbconv import MultiPathInvertedResidual
from mixpath.training.seeding import step_rng


def multipath_layers(supernet: nn.Module) -> list[MultiPathInvertedResidual]:
    """The searchable layers of an ``mbconv`` supernet; other families are a one-line error."""
    layers = getattr(supernet, "layers", None)
    if layers is None or not all(isinstance(layer, MultiPathInvertedResidual) for layer in layers):
        raise MixPathError(f"{type(supernet).__name__} is not a MixPath inverted-bottleneck supernet (mbconv family)")
    return list(layers)


@torch.no_grad()
def layer_inputs(supernet: nn.Module, arch: Architecture, images: torch.Tensor) -> list[torch.Tensor]:
    """The input of every searchable layer when ``supernet`` runs ``arch`` on ``images`` (eval mode)."""
    captured: list[torch.Tensor] = []
    handles = [
        layer.register_forward_pre_hook(lambda module, args: captured.append(args[0].detach()))
        for layer in multipath_layers(supernet)
    ]
    training = supernet.training
    try:
        supernet.eval()
        supernet(images, arch)
    finally:
        for handle in handles:
            handle.remove()
        supernet.train(training)
    return captured


def path_sets(n_ops: int, m: int) -> list[tuple[int, ...]]:
    """Every set of 1..m op indices, single paths first."""
    return [subset for k in range(1, min(m, n_ops) + 1) for subset in itertools.combinations(range(n_ops), k)]


@torch.no_grad()
def path_similarity(
    layer: MultiPathInvertedResidual, x: torch.Tensor, m: int, expansion: int = 0
) -> tuple[list[str], np.ndarray]:
    """(labels, matrix): mean over images of the cosine similarity between the projected outputs of every
    pair of path sets of ``layer`` (expansion index ``expansion``) on its input ``x`` (N x C x H x W)."""
    training = layer.training
    layer.eval()
    try:
        hidden = layer.expand[expansion](x)
        singles = [branch(hidden) for branch in cast(nn.ModuleList, layer.branches[expansion])]
        sets = path_sets(len(singles), m)
        outputs = torch.stack(
            [layer.project[expansion](sum(singles[p] for p in subset)).flatten(1) for subset in sets]
        )  # sets x N x features
    finally:
        layer.train(training)
    unit = nn.functional.normalize(outputs, dim=2)
    matrix = torch.einsum("anf,bnf->abn", unit, unit).mean(2)
    labels = ["+".join(layer.spec.ops[p] for p in subset) for subset in sets]
    return labels, matrix.double().numpy()


def _tensors(bn: nn.Module) -> dict[str, torch.Tensor]:
    """A BN's running statistics, affine parameters and count of training batches, by name."""
    return {
        name: getattr(bn, name) for name in ("running_mean", "running_var", "weight", "bias", "num_batches_tracked")
    }


def _ratio_summary(numerator: torch.Tensor, denominator: torch.Tensor) -> dict[str, float]:
    """Per-channel ratio summarised two robust ways: the median ratio, and sum|num| / sum|den|."""
    numerator, denominator = numerator.double(), denominator.double()
    return {
        "median": float((numerator / denominator).median()),
        "abs_sum": float(numerator.abs().sum() / denominator.abs().sum()),
    }


def _closeness(a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
    """Cosine similarity and relative distance ||a - b|| / ||b|| of two parameter vectors."""
    a, b = a.detach().double(), b.detach().double()
    return {
        "cosine": float(nn.functional.cosine_similarity(a, b, dim=0)),
        "relative_distance": float((a - b).norm() / b.norm()),
    }


def shadow_bn_statistics(supernet: nn.Module) -> list[dict[str, Any]]:
    """Per layer and expansion ratio: ratios of SBN_k's running mean and variance to SBN_m's for
    k < m (``mu_ratio['1/2']`` is mu(SBN_1)/mu(SBN_2)), and gamma/beta closeness of SBN_k to SBN_m.
    Pairs with an SBN that never ran in training (no statistics) are left out; ``batches`` says how many
    training batches each SBN saw."""
    entries = []
    for index, layer in enumerate(multipath_layers(supernet)):
        for e, norm in zip(layer.expansions, layer.norms, strict=True):
            if not isinstance(norm, ShadowBatchNorm):
                raise MixPathError("SBN statistics need a supernet trained with bn_policy 'shadow'")
            bns = [_tensors(bn) for bn in norm.bns]
            entry: dict[str, Any] = {
                "layer": index,
                "expansion": e,
                "batches": [int(bn["num_batches_tracked"]) for bn in bns],
                **{field: {} for field in ("mu_ratio", "var_ratio", "gamma", "beta")},
            }
            for k, j in itertools.combinations(range(1, len(bns) + 1), 2):
                if j != k + 1 and j != len(bns):
                    continue
                key = f"{k}/{j}"
                low, high = bns[k - 1], bns[j - 1]
                if int(low["num_batches_tracked"]) == 0 or int(high["num_batches_tracked"]) == 0:
                    continue  # an SBN this (layer, expansion) never trained with: no statistics to compare
                entry["mu_ratio"][key] = _ratio_summary(low["running_mean"], high["running_mean"])
                entry["var_ratio"][key] = _ratio_summary(low["running_var"], high["running_var"])
                entry["gamma"][key] = _closeness(low["weight"], high["weight"])
                entry["beta"][key] = _closeness(low["bias"], high["bias"])
            entries.append(entry)
    return entries


def sbn_summary(entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Means over (layer, expansion) entries of ``shadow_bn_statistics``, beside the paper's expectation
    k/j and (k/j)^2 for a k/j pair; ``entries`` counts the entries behind each mean."""
    keys = sorted({key for entry in entries for key in entry["mu_ratio"]})
    summary: dict[str, Any] = {}
    for key in keys:
        k, j = (int(v) for v in key.split("/"))
        present = [e for e in entries if key in e["mu_ratio"]]
        summary[key] = {"entries": len(present), "expected_mu_ratio": k / j, "expected_var_ratio": (k / j) ** 2}
        for field, measures in (
            ("mu_ratio", ("median", "abs_sum")),
            ("var_ratio", ("median", "abs_sum")),
            ("gamma", ("cosine", "relative_distance")),
            ("beta", ("cosine", "relative_distance")),
        ):
            for how in measures:
                values = np.array([e[field][key][how] for e in present])
                values = values[np.isfinite(values)]
                summary[key][f"{field}_{how}"] = float(values.mean()) if len(values) else None
    return summary


def oneshot_accuracies(
    evaluator: Any, space: SearchSpace, m_values: Sequence[int], n: int, seed: int = 0
) -> dict[int, list[float]]:
    """One-shot accuracy (``evaluator.evaluate``'s ``accuracy``) of ``n`` random architectures per path
    limit m (MixPath's sampling rule: per layer 1..m paths), drawn with ``seed``."""
    results = {}
    for m in m_values:
        rng = step_rng(seed, "oneshot", m)
        archs = [space.random_architecture(rng, m) for _ in range(n)]
        results[m] = [metrics["accuracy"] for metrics in evaluator.evaluate(archs)]
    return results
