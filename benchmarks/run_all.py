"""The speed suite: mixpath against a reference implementation, measured in the same run; prints the table.

    python benchmarks/run_all.py                 # under 10 min on 2 idle cores
    python benchmarks/run_all.py --quick         # fewer steps and repetitions, ~6 min

Every figure comes from a fresh process (``bench_training.py``, ``bench_candidates.py``), so its peak
resident memory is its own. Reference and mixpath runs alternate (A/B, B/A, ...) on the same
architectures, and each ratio is the median over repetitions of the ratio within one, so load from other
jobs and the machine's own speed swings fall on both alike; the load average
is printed with the table. The multi-path time target is judged on m=4 and m=1 steps alternating in one
mixpath process (``bench_training.py --multi-single``), where a swing cannot fall on one side only, and
the fmnist-s1 speed-up on reference and mixpath steps alternating in one process under the reference's
allocator (``--against-reference``; conservative: mixpath loses tcmalloc there).

Environments: every process, reference and mixpath alike, gets the OpenMP waiting that mixpath's CLI
would choose at the suite's start (``mixpath.kernels.runtime.openmp_wait_env``: a short spin on idle cores,
``OMP_WAIT_POLICY=PASSIVE`` on busy ones, where spinning threads stall for scheduler time slices and the
numbers say more about the load than the code); it is printed with the table. The reference runs with the
system allocator; mixpath with what its CLI loads (tcmalloc or jemalloc when installed). The ablation rows
take mixpath's fast paths away one at a time. Raw results go to ``benchmarks/results/speed.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from mixpath.io import write_json, write_text
from mixpath.kernels import cpu
from mixpath.kernels.runtime import SWITCH, find_allocator, openmp_wait_here

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SPACES = ("cifar-s1", "fmnist-s1")
MS = (1, 2, 4)
IMPLS = ("reference", "mixpath")
FMNIST_STEPS = {False: 10, True: 6}
"""Timed fmnist-s1 steps per process (full suite, --quick)."""
MULTI_SINGLE_STEPS = {"cifar-s1": {False: 12, True: 3}, "fmnist-s1": {False: 40, True: 12}}
"""Timed steps of each kind in the one-process m=4 vs m=1 measurement (full suite, --quick)."""
OPENMP_WAIT = openmp_wait_here(os.environ)
"""The OpenMP waiting of every process of this run, chosen once, before the suite adds load of its own."""


def environment(allocator: bool, openmp_wait: dict[str, str] = OPENMP_WAIT, **extra: str) -> dict[str, str]:
    drop = ("LD_PRELOAD", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", SWITCH)
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(openmp_wait)
    env[SWITCH] = "0"
    library = find_allocator()
    if allocator and library is not None:
        env["LD_PRELOAD"] = str(library)
    return {**env, **extra}


def run(script: str, args: list[str], env: dict[str, str]) -> dict:
    """One measurement in a fresh process; its last stdout line is the JSON result."""
    out = subprocess.run(
        [sys.executable, str(HERE / script), *args], env=env, capture_output=True, text=True, check=False
    )
    if out.returncode:
        raise RuntimeError(f"{script} {' '.join(args)} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def median(rows: list[dict], key: str) -> float:
    return statistics.median(row[key] for row in rows)


def images_per_s(row: dict, steps: int) -> float:
    """Throughput over the first ``steps`` timed steps of one run."""
    return row["batch"] * steps / sum(row["step_s"][:steps])


def speed_up(mix: list[dict], ref: list[dict]) -> float:
    """mixpath's images/s over the reference's: the median over repetitions of the ratio within each
    (the two ran back to back on the same architectures), over the timed steps both ran."""
    steps = min(len(row["step_s"]) for row in ref + mix)
    return statistics.median(images_per_s(a, steps) / images_per_s(b, steps) for a, b in zip(mix, ref, strict=True))


def time_ratio(four: list[dict], one: list[dict]) -> float:
    """m=4 over m=1 time per image, separate processes: the median over repetitions (same architecture
    seed) of the ratio."""
    return statistics.median(a["images_per_s"] / b["images_per_s"] for a, b in zip(one, four, strict=True))


AGAINST_REFERENCE_STEPS = {False: 20, True: 8}
"""Timed steps of each implementation in the one-process fmnist-s1 comparison (full suite, --quick)."""


def against_reference(quick: bool) -> dict[str, dict]:
    """fmnist-s1 per m: reference and mixpath steps alternating in one process under the reference's
    allocator (``bench_training.py --against-reference``), the measurement the fmnist-s1 speed target is
    judged on. Separate processes seconds apart see this machine's speed swings: the same reference
    configuration ran at 166 to 315 img/s in three runs of this suite. cifar-s1 (a reference step takes
    10-25 s; speed-ups of 5-7x) keeps the separate-process figures."""
    results = {}
    for m in MS:
        args = ["--space", "fmnist-s1", "--m", str(m), "--steps", str(AGAINST_REFERENCE_STEPS[quick])]
        results[f"fmnist-s1 m={m}"] = row = run("bench_training.py", [*args, "--against-reference"], environment(False))
        print(f"  fmnist-s1 m={m} against the reference in one process: {row['speed_up']:.2f}x", file=sys.stderr)
    return results


def multi_single(quick: bool) -> dict[str, dict]:
    """Per space: m=4 and m=1 training steps alternating in one mixpath process (``bench_training.py
    --multi-single``), the measurement the multi-path time target is judged on: separate processes a
    minute apart see different machine speeds (this machine swings 20-50 %), alternating steps do not."""
    results = {}
    for space in SPACES:
        steps = str(MULTI_SINGLE_STEPS[space][quick])
        args = ["--space", space, "--m", "4", "--steps", steps, "--multi-single"]
        results[space] = run("bench_training.py", args, environment(True))
        print(f"  {space} m=4 / m=1 in one process: {results[space]['ratio']:.2f}", file=sys.stderr, flush=True)
    return results


def training(quick: bool, reps: int) -> dict:
    """Per space and m: reference and mixpath runs, alternating, on the same architectures.

    fmnist-s1: ``reps`` short repetitions, each on its own architecture seed (shared by both
    implementations and by m=1, 2, 4): frequent alternation spreads the machine's minute-scale speed swings
    over both implementations, and more seeds average the sampled path counts. cifar-s1: 7-20 s per
    reference step, so one repetition and one timed step each (its speed-up, 5-6x, needs no more; its
    multi/single time ratio comes from ``multi_single``)."""
    results: dict[str, dict[str, list[dict]]] = {}
    for space in SPACES:
        big = space == "cifar-s1"
        steps = dict.fromkeys(IMPLS, 1 if big else FMNIST_STEPS[quick])
        common = ["--space", space, "--warmup", "1" if big else "2"]
        if big:
            common += ["--saved-archs", "1"]
        for rep in range(1 if big else reps):
            for m in MS:
                key = f"{space} m={m}"
                results.setdefault(key, {"reference": [], "mixpath": []})
                for impl in IMPLS if rep % 2 == 0 else IMPLS[::-1]:
                    env = environment(impl == "mixpath")
                    args = ["--impl", impl, "--m", str(m), "--steps", str(steps[impl]), "--seed", str(rep), *common]
                    row = run("bench_training.py", args, env)
                    results[key][impl].append(row)
                    print(f"  {key} {impl}: {row['images_per_s']:.1f} img/s", file=sys.stderr, flush=True)
    return results


ABLATIONS = {
    "mixpath (all)": ([], {"allocator": True}),
    "system malloc": ([], {"allocator": False}),
    "OpenMP threads sleep (OMP_WAIT_POLICY=PASSIVE)": (
        [],
        {"allocator": True, "openmp_wait": {"OMP_WAIT_POLICY": "PASSIVE"}},
    ),
    "no compiled CPU kernels (MIXPATH_CPU_KERNELS=0)": ([], {"allocator": True, cpu.SWITCH: "0"}),
    "no fused branches (so no kernels either)": (["--plain"], {"allocator": True}),
    "NCHW, plain branches, system malloc": (["--nchw", "--plain"], {"allocator": False}),
}


def ablation(quick: bool) -> dict[str, list[dict]]:
    """fmnist-s1 at m=4 with one fast path taken away at a time, once each (what each brings, not a target)."""
    steps = ["--steps", "8" if quick else "12", "--warmup", "2"]
    rows: dict[str, list[dict]] = {name: [] for name in ABLATIONS}
    for name, (flags, settings) in ABLATIONS.items():
        settings = dict(settings)
        env = environment(settings.pop("allocator"), **settings)
        args = ["--impl", "mixpath", "--space", "fmnist-s1", "--m", "4", *steps, *flags]
        rows[name].append(run("bench_training.py", args, env))
        print(f"  ablation {name}: {rows[name][-1]['images_per_s']:.1f} img/s", file=sys.stderr, flush=True)
    return rows


def candidates(quick: bool) -> dict[str, list[dict]]:
    """Reference, mixpath and (full suite) mixpath with the reference's protocol, one process each."""
    impls = ("reference", "mixpath") if quick else ("reference", "mixpath", "mixpath-unfolded", "mixpath-ema")
    results: dict[str, list[dict]] = {}
    for impl in impls:
        archs = ["--archs", "1" if quick or impl == "mixpath-ema" else "2"]
        results[impl] = [run("bench_candidates.py", ["--impl", impl, *archs], environment(impl != "reference"))]
        print(f"  candidates {impl}: {results[impl][0]['archs_per_min']:.2f} archs/min", file=sys.stderr, flush=True)
    return results


def ranking(run_dir: Path, ground_truth: Path) -> dict | None:
    if not (run_dir / "checkpoint.pt").is_file() or not ground_truth.is_file():
        return None
    args = ["--run", str(run_dir), "--ground-truth", str(ground_truth)]
    return run("bench_ranking.py", args, environment(True))


def training_table(results: dict, together: dict[str, dict]) -> list[str]:
    lines = [
        "| space | m | reference img/s | mixpath img/s | speed-up, separate processes | speed-up, one process | "
        "reference peak MB (+train) | mixpath peak MB (+train) | reference saved MB | mixpath saved MB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, impls in results.items():
        space, m = key.split(" m=")
        ref, mix = impls["reference"], impls["mixpath"]
        speed = speed_up(mix, ref)
        one = f"{together[key]['speed_up']:.2f}x" if key in together else "-"
        lines.append(
            f"| {space} | {m} | {median(ref, 'images_per_s'):.1f} | {median(mix, 'images_per_s'):.1f} | "
            f"{speed:.2f}x | {one} | {median(ref, 'peak_rss_mb'):.0f} (+{median(ref, 'train_mb'):.0f}) | "
            f"{median(mix, 'peak_rss_mb'):.0f} (+{median(mix, 'train_mb'):.0f}) | {median(ref, 'saved_mb'):.0f} | "
            f"{median(mix, 'saved_mb'):.0f} |"
        )
    return lines


def multi_single_table(results: dict, paired: dict[str, dict]) -> list[str]:
    lines = [
        "| space | impl | m=4 / m=1 time, one process | m=4 / m=1 time, separate processes | "
        "m=4 / m=1 peak RSS | m=4 / m=1 training RSS | m=4 / m=1 saved |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for space in SPACES:
        for impl in ("reference", "mixpath"):
            one, four = results[f"{space} m=1"][impl], results[f"{space} m=4"][impl]
            together = f"{paired[space]['ratio']:.2f}" if impl == "mixpath" else "-"
            lines.append(
                f"| {space} | {impl} | {together} | {time_ratio(four, one):.2f} | "
                f"{median(four, 'peak_rss_mb') / median(one, 'peak_rss_mb'):.2f} | "
                f"{median(four, 'train_mb') / median(one, 'train_mb'):.2f} | "
                f"{median(four, 'saved_mb') / median(one, 'saved_mb'):.2f} |"
            )
    return lines


def ablation_table(rows: dict[str, list[dict]]) -> list[str]:
    full = median(rows["mixpath (all)"], "images_per_s")
    lines = ["| fmnist-s1, m=4 | img/s | vs all on | training RSS MB | saved MB |", "| --- | --- | --- | --- | --- |"]
    for name, runs in rows.items():
        speed = median(runs, "images_per_s")
        lines.append(
            f"| {name} | {speed:.1f} | {speed / full:.2f} | {median(runs, 'train_mb'):.0f} | "
            f"{median(runs, 'saved_mb'):.0f} |"
        )
    return lines


def candidates_table(results: dict[str, list[dict]]) -> list[str]:
    ref = median(results["reference"], "archs_per_min")
    labels = {
        "reference": "reference: SPOS re-estimation (200 x 100 images), NCHW",
        "mixpath": "mixpath: exact calibration (2,048 images), default",
        "mixpath-unfolded": "mixpath: exact calibration, BN not folded for validation",
        "mixpath-ema": "mixpath code, SPOS re-estimation (200 x 100 images)",
    }
    lines = [
        "| fmnist-s1, m=4 | archs/min | s/arch | vs reference | peak MB (+eval) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for impl, rows in results.items():
        lines.append(
            f"| {labels[impl]} | {median(rows, 'archs_per_min'):.2f} | {median(rows, 'seconds_per_arch'):.1f} | "
            f"{median(rows, 'archs_per_min') / ref:.2f}x | {median(rows, 'peak_rss_mb'):.0f} "
            f"(+{median(rows, 'eval_mb'):.0f}) |"
        )
    return lines


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def targets(train: dict, together: dict[str, dict], paired: dict[str, dict], cands: dict) -> list[str]:
    lines = []
    for space in SPACES:
        ref_four, one, four = (
            train[f"{space} m={m}"][impl] for m, impl in ((4, "reference"), (1, "mixpath"), (4, "mixpath"))
        )
        key = f"{space} m=4"
        speed = together[key]["speed_up"] if key in together else speed_up(four, ref_four)
        how = "alternating in one process" if key in together else "separate processes"
        cost = paired[space]["ratio"]
        rss = median(four, "train_mb") / median(one, "train_mb")
        saved = median(four, "saved_mb") / median(one, "saved_mb")
        lines += [
            f"- {space}: m=4 training {speed:.2f}x the reference, {how} (target >= 4x: {verdict(speed >= 4)})",
            f"- {space}: m=4 costs {cost:.2f}x single-path time, alternating in one process, "
            f"{paired[space]['mean_paths']:.2f} paths per layer drawn (target <= 1.6x: {verdict(cost <= 1.6)})",
            f"- {space}: m=4 training memory {rss:.2f}x single-path (process RSS above the built model), "
            f"{saved:.2f}x in saved activations (target <= 1.5x: {verdict(max(rss, saved) <= 1.5)})",
        ]
    speed = median(cands["mixpath"], "archs_per_min") / median(cands["reference"], "archs_per_min")
    lines.append(f"- candidate evaluation {speed:.2f}x the reference (target >= 3x: {verdict(speed >= 3)})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps, one repetition")
    parser.add_argument("--reps", type=int, default=None, help="fmnist-s1 training repetitions (default 2, quick 1)")
    parser.add_argument("--run", type=Path, default=Path("experiments/runs/ablation/shadow"))
    parser.add_argument("--ground-truth", type=Path, default=Path("experiments/results/ablation/groundtruth_seed0.csv"))
    args = parser.parse_args()
    reps = args.reps or (1 if args.quick else 2)
    started, load_before = time.perf_counter(), os.getloadavg()
    cpu.available()  # compile once, outside every timed process
    print("training ...", file=sys.stderr)
    train = training(args.quick, reps)
    print("against the reference in one process ...", file=sys.stderr)
    together = against_reference(args.quick)
    print("multi-path vs single-path ...", file=sys.stderr)
    paired = multi_single(args.quick)
    print("ablation ...", file=sys.stderr)
    ablations = ablation(args.quick)
    print("candidate evaluation ...", file=sys.stderr)
    cands = candidates(args.quick)
    print("ranking ...", file=sys.stderr)
    ranks = ranking(args.run, args.ground_truth)
    load_after, minutes = os.getloadavg(), (time.perf_counter() - started) / 60
    library = find_allocator()
    machine = (
        f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, mixpath allocator {library.name if library else 'none (system)'}, "
        f"OpenMP waiting {' '.join(f'{k}={v}' for k, v in OPENMP_WAIT.items())} (both implementations), "
        f"load average {load_before[0]:.1f} at start / {load_after[0]:.1f} at end, "
        f"{datetime.date.today().isoformat()}, suite {minutes:.1f} min"
    )
    lines = [
        f"Machine: {machine}.",
        f"Command: `python benchmarks/run_all.py{' --quick' if args.quick else ''}`",
        "",
        "Supernet training, batch 96 (median of reference/mixpath runs alternated in fresh processes; fmnist-s1: "
        f"{reps} x {FMNIST_STEPS[args.quick]} timed steps each, one architecture seed per repetition; cifar-s1: "
        "one timed step each). One process (fmnist-s1): both supernets in one process under the reference's "
        f"allocator, {AGAINST_REFERENCE_STEPS[args.quick]} steps each alternating on the same architectures:",
        "",
        *training_table(train, together),
        "",
        "Multi-path vs single-path (the MixPath sampler at m=4 draws 1-4 paths per layer, 2.5 on average). "
        "One process: one m=4 supernet trains m=1 and m=4 architectures in alternation (paired expansions; "
        + ", ".join(
            f"{space} {MULTI_SINGLE_STEPS[space][args.quick]} steps each, {paired[space]['mean_paths']:.2f}"
            " paths per layer drawn"
            for space in SPACES
        )
        + "); separate processes: the training rows above.",
        "",
        *multi_single_table(train, paired),
        "",
        "What each fast path brings:",
        "",
        *ablation_table(ablations),
        "",
        "Candidate evaluation (calibration + validation on 6,000 images), fmnist-s1:",
        "",
        *candidates_table(cands),
        "",
    ]
    if ranks is not None:
        lines += [
            f"Ranking ({ranks['archs']} ground-truth architectures, {args.run}): Kendall tau vs stand-alone "
            f"{ranks['target']} accuracy: exact {ranks['tau_exact_vs_truth']:.3f}, SPOS 200-batch "
            f"{ranks['tau_ema200_vs_truth']:.3f} (difference exact - SPOS, 95 % paired bootstrap interval: "
            f"[{ranks['tau_difference_interval'][0]:.3f}, {ranks['tau_difference_interval'][1]:.3f}]); "
            f"exact vs SPOS 200-batch {ranks['tau_exact_vs_ema200']:.3f}.",
            "",
        ]
    lines += ["Targets (issue 7):", "", *targets(train, together, paired, cands)]
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    raw = {
        "machine": machine,
        "training": train,
        "against_reference": together,
        "multi_single": paired,
        "ablation": ablations,
        "candidates": cands,
        "ranking": ranks,
    }
    write_json(RESULTS / "speed.json", raw)
    write_text(RESULTS / "speed.md", text + "\n")


if __name__ == "__main__":
    main()
