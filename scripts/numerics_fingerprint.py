"""Numerics of the in-memory training paths, recorded to a file, to show that a refactoring changed none of them.

    git archive HEAD | tar -x -C /tmp/before                                    # the code before, beside
    PYTHONPATH=/tmp/before python scripts/numerics_fingerprint.py record before.pt
    python scripts/numerics_fingerprint.py record after.pt                        # the working tree
    python scripts/numerics_fingerprint.py compare before.pt after.pt             # exit status 1 on a difference

What is recorded (tiny space, scikit-learn digits with augmentation switched on; seconds on one core):
supernet weights and metrics rows after 2 epochs of MixPath (m=2, 2 micro-batches) and FairNAS training; a run
killed mid-epoch and resumed, and the same run uninterrupted; SPOS training on the data as loaded; exact and
ema calibration scores with the evaluator's cache keys, and a stand-alone score; a stand-alone model's weights
and result after 3 epochs, and killed after one and resumed; two ground-truth rows. ``compare`` checks tensors
with ``torch.equal`` and everything else with ``==``.
"""

from __future__ import annotations

import dataclasses
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch


def record(out: Path) -> None:
    import mixpath
    from mixpath.data import AugmentConfig, load_dataset
    from mixpath.evaluation import CalibrationSettings, SupernetEvaluator, evaluate_standalone
    from mixpath.ranking.groundtruth import build_ground_truth
    from mixpath.spaces import get_space
    from mixpath.supernet import build_standalone
    from mixpath.training import TrainConfig, load_run, train_supernet
    from mixpath.training.recipe import Recipe
    from mixpath.training.standalone import init_seed, train_standalone

    print("recording the numerics of", Path(mixpath.__file__).parent, file=sys.stderr)
    torch.set_num_threads(1)
    found: dict[str, Any] = {}
    tmp = Path(tempfile.mkdtemp())
    data = load_dataset("digits", train_subset=256)
    augmented = dataclasses.replace(data, augment=AugmentConfig(crop_padding=1, flip=True, cutout=2))

    def weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone().cpu() for k, v in module.state_dict().items()}

    def rows(metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in row.items() if k not in ("seconds", "images_per_s")} for row in metrics]

    base = dict(space="tiny", data="digits", epochs=2, batch_size=32, train_subset=256, eval_archs=1)
    for strategy, m in (("mixpath", 2), ("fairnas", 1)):
        config = TrainConfig(strategy=strategy, m=m, micro_batches=2, **base)
        result = train_supernet(config, tmp / f"sn-{strategy}", device="cpu", progress=False, dataset=augmented)
        found[f"supernet-{strategy}"], found[f"supernet-{strategy}-metrics"] = (
            weights(result.supernet),
            rows(result.metrics),
        )
    config = TrainConfig(strategy="mixpath", m=2, **base)
    train_supernet(config, tmp / "cut", device="cpu", progress=False, dataset=augmented, stop_after_steps=11)
    resumed = train_supernet(None, tmp / "cut", resume=True, device="cpu", progress=False, dataset=augmented)
    found["supernet-resumed"] = weights(resumed.supernet)
    whole = train_supernet(config, tmp / "whole", device="cpu", progress=False, dataset=augmented)
    found["supernet-uninterrupted"] = weights(whole.supernet)
    spos = train_supernet(TrainConfig(strategy="spos", m=1, **base), tmp / "spos", device="cpu", progress=False)
    found["supernet-spos"] = weights(spos.supernet)

    run = load_run(tmp / "sn-mixpath", device="cpu")
    archs = [run.space.random_architecture(random.Random(0), 2) for _ in range(3)]
    for mode in ("exact", "ema"):
        calibration = CalibrationSettings(mode, size=300, batches=3, batch_size=50)
        evaluator = SupernetEvaluator(run.supernet, run.dataset, calibration=calibration, fold_bn=mode == "exact")
        found[f"scores-{mode}"], found[f"cache-key-{mode}"] = evaluator.evaluate(archs), evaluator.cache_key()
    subnet = run.supernet.extract(archs[0])
    found["standalone-score"] = evaluate_standalone(subnet, run.dataset, calibration=CalibrationSettings(size=300))

    space = get_space("tiny")
    arch = space.random_architecture(random.Random(1), 1)
    recipe = Recipe(epochs=3, batch_size=32, lr=0.05)
    init_seed(0)
    model = build_standalone(space, arch)
    result = train_standalone(model, augmented, recipe, device="cpu", progress=False, validate_epochs=True)
    assert result is not None
    found["standalone"] = weights(model)
    found["standalone-result"] = {k: v for k, v in result.items() if k != "seconds"} | {
        "history": rows(result["history"])
    }
    init_seed(0)
    cut = train_standalone(
        build_standalone(space, arch),
        augmented,
        recipe,
        progress=False,
        checkpoint_path=tmp / "sa.pt",
        stop_after_epochs=1,
    )
    assert cut is None
    init_seed(5)  # other initial weights: the checkpoint must replace them
    model = build_standalone(space, arch)
    train_standalone(model, augmented, recipe, device="cpu", progress=False, checkpoint_path=tmp / "sa.pt")
    found["standalone-resumed"] = weights(model)
    other = space.random_architecture(random.Random(2), 1)
    truth = build_ground_truth(space, data, [arch, other], Recipe(epochs=1, batch_size=32), tmp / "gt.csv", seed=1)
    found["groundtruth"] = [(row.arch, row.val_acc, row.test_acc) for row in truth]
    torch.save(found, out)
    print(f"recorded {len(found)} entries in {out}", file=sys.stderr)


def compare(before: Path, after: Path) -> int:
    """Print one line per entry (OK or DIFF) and return the number of entries that differ."""
    a, b = torch.load(before, weights_only=False), torch.load(after, weights_only=False)
    differing = sorted(a.keys() ^ b.keys())
    for key in sorted(a.keys() & b.keys()):
        x, y = a[key], b[key]
        if isinstance(x, dict) and x and all(isinstance(v, torch.Tensor) for v in x.values()):
            same = x.keys() == y.keys() and all(torch.equal(x[name], y[name]) for name in x)
        else:
            same = x == y
        print(("OK   " if same else "DIFF ") + key)
        differing += [] if same else [key]
    print("all equal" if not differing else f"{len(differing)} differ: {', '.join(differing)}")
    return len(differing)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "record":
        record(Path(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(1 if compare(Path(sys.argv[2]), Path(sys.argv[3])) else 0)
    else:
        sys.exit(__doc__)
