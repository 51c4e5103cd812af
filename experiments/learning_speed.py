"""Why does a supernet learn slowly? Train accuracy over the first steps, supernets against a stand-alone net.

    python experiments/learning_speed.py            # ~9 min on one core; writes results/learning_speed.{json,md}

Every variant trains from the same initialisation seed on the same batches (order and augmentation seeded
per step), batch 96, SGD momentum 0.9, weight decay 3e-4, gradient clip 5, cosine over the run, one thread.
What differs is what is trained at each step:

- ``standalone``: one fixed architecture ``A`` built as a plain network;
- ``supernet-fixed``: the m=4 supernet, always trained on ``A`` (must learn as ``standalone`` does);
- ``spos``: a single-path supernet, a uniform path per layer (4 kernels x 2 expansions = 8 choices);
- ``spos-e6``: the same with every expansion fixed at 6 (4 choices per layer);
- ``mixpath``: the m=4 Shadow BN supernet with MixPath's sampler;
- ``mixpath-zero-gamma``: the same with the BN after each residual layer's projection starting at gamma 0,
  so a layer adds nothing to its input until trained (Goyal et al. 2017's zero-init of the last BN);
- ``mixpath-lr0.1``: the same sampler at 4x the learning rate;
- ``mixpath-layer<i>``: MixPath's sampler in layer i only, every other layer fixed at ``A``'s choice: which
  layers' sharing costs the most learning (between ``supernet-fixed`` and ``mixpath``).

The figure is the train accuracy of the batches seen (each under the architecture trained on it), averaged
over windows of 50 steps: how fast the weights become useful for the architectures drawn.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from mixpath.data import augment_batch, load_dataset
from mixpath.io import write_json, write_text
from mixpath.spaces import Architecture, get_space
from mixpath.supernet import build_standalone, build_supernet
from mixpath.training.samplers import make_sampler
from mixpath.training.schedule import cosine_lr
from mixpath.training.seeding import derive_seed, step_rng, torch_generator

ROOT = Path(__file__).resolve().parent
ARCH_A = "e3:k7-e6:k5-e3:k9-e3:k5-e6:k5-e6:k9-e6:k3-e3:k7-e3:k5"  # the first single-path arch of the ground truth
LAYERS = 9  # fmnist-s1's searchable layers
VARIANTS = (
    "standalone",
    "supernet-fixed",
    "spos",
    "spos-e6",
    "mixpath",
    "mixpath-zero-gamma",
    "mixpath-lr0.1",
    *(f"mixpath-layer{i}" for i in range(LAYERS)),
)
WINDOW = 50


def zero_residual_gammas(supernet: torch.nn.Module) -> None:
    """Set gamma of every BN after a residual layer's projection (all path-count BNs) to 0."""
    for layer in supernet.layers:
        if layer.residual:
            for module in layer.norms.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    torch.nn.init.zeros_(module.weight)


def with_expansion(space, arch, e: str):
    """``arch`` with every layer's expansion ratio set to ``e``."""
    text = "-".join(f"e{e}:{token.split(':')[1]}" for token in space.format(arch).split("-"))
    return space.parse(text, space.max_m())


def run(variant: str, steps: int, base_lr: float = 0.025) -> dict:
    space = get_space("fmnist-s1")
    data = load_dataset("fashion-mnist", val_size=6000, split_seed=0)
    arch_a = space.parse(ARCH_A, 4)
    torch.manual_seed(derive_seed(0, "init"))
    lr = 0.1 if variant.endswith("lr0.1") else base_lr
    if variant == "standalone":
        model = build_standalone(space, arch_a)
        forward = lambda x, arch: model(x)  # noqa: E731
    else:
        m = 1 if variant.startswith("spos") else 4
        model = build_supernet(space, m, "shadow")
        forward = model
        if variant.endswith("zero-gamma"):
            zero_residual_gammas(model)
        sampler = make_sampler("spos" if m == 1 else "mixpath", space, m)
    params = list(model.parameters())
    optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=3e-4)
    order = torch.randperm(len(data.train_y), generator=torch_generator(0, "order", 0))
    correct, losses, curve = [], [], []
    started = time.perf_counter()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(lr, step, steps)
        index = order[step * 96 : (step + 1) * 96]
        xb = augment_batch(data.train_x[index], data.augment, torch_generator(0, "aug", 0, step))
        yb = data.train_y[index]
        if variant in ("standalone", "supernet-fixed"):
            arch = arch_a
        else:
            arch = sampler.step_architectures(step_rng(0, "arch", 0, step))[0]
            if variant == "spos-e6":
                arch = with_expansion(space, arch, "6")
            if variant.startswith("mixpath-layer"):
                i = int(variant.removeprefix("mixpath-layer"))
                arch = Architecture(arch_a.layers[:i] + arch.layers[i : i + 1] + arch_a.layers[i + 1 :])
        logits = forward(xb, arch)
        loss = F.cross_entropy(logits, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        optimizer.step()
        correct.append((logits.argmax(1) == yb).float().mean().item())
        losses.append(loss.item())
        if (step + 1) % WINDOW == 0:
            curve.append(
                {
                    "step": step + 1,
                    "train_acc": round(100 * sum(correct[-WINDOW:]) / WINDOW, 2),
                    "train_loss": round(sum(losses[-WINDOW:]) / WINDOW, 4),
                }
            )
            print(f"{variant} step {step + 1}: {curve[-1]}", flush=True)
    return {"variant": variant, "lr": lr, "steps": steps, "curve": curve, "seconds": time.perf_counter() - started}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--only", default=",".join(VARIANTS))
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "learning_speed")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    path = args.out.with_suffix(".json")
    results = json.loads(path.read_text()) if path.exists() else {}
    for variant in args.only.split(","):
        if results.get(variant, {}).get("steps") != args.steps:
            results[variant] = run(variant, args.steps)
            write_json(path, results)
    windows = [point["step"] for point in next(iter(results.values()))["curve"]]
    lines = [
        "# Train accuracy (%) of the batches seen, per window of 50 steps (batch 96, fmnist-s1, one seed)",
        "",
        "| variant | lr | " + " | ".join(f"steps {s - WINDOW + 1}-{s}" for s in windows) + " |",
        "|---|---|" + "---|" * len(windows),
    ]
    for variant, result in results.items():
        cells = " | ".join(f"{p['train_acc']:.1f}" for p in result["curve"])
        lines.append(f"| {variant} | {result['lr']} | {cells} |")
    write_text(args.out.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
