"""Which short retraining recipe should ``mixpath pipeline`` use? (issue 14)

Carries out ``experiments/protocols/retrain-recipe-2026-12-03.toml`` (fixed before any run): every candidate
recipe retrains the same architectures from scratch; the choice is by validation accuracy under a wall-clock
rule. Resumable: each (candidate, architecture) is a ``mixpath.retraining`` folder under
experiments/runs/<protocol>/ (a killed run resumes at its last epoch, a finished one is read back).

    OMP_NUM_THREADS=1 taskset -c 1 python experiments/retrain_recipe.py run    # train what is missing
    python experiments/retrain_recipe.py table                                 # results.csv, choice.json

Committed outputs: experiments/results/<protocol>/results.csv (one row per run) and choice.json.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
from pathlib import Path
from typing import Any

import tomllib
import torch

from mixpath.data import load_dataset
from mixpath.evaluation import CostModel
from mixpath.io import read_json, write_csv, write_json
from mixpath.ranking import stratified_sample
from mixpath.retraining import RESULT_FILE, retrain_architecture
from mixpath.spaces import get_space
from mixpath.training import Recipe

ROOT = Path(__file__).resolve().parent
PROTOCOL = ROOT / "protocols" / "retrain-recipe-2026-12-03.toml"
RANKING_PROTOCOL = ROOT / "protocols" / "fmnist-s1-ranking-2026-12-02.toml"

log = logging.getLogger("retrain_recipe")


def load_protocol() -> dict[str, Any]:
    with open(PROTOCOL, "rb") as f:
        return tomllib.load(f)


def study_archs(protocol: dict[str, Any]) -> list[str]:
    """The protocol's architectures: the ranking study's list, most FLOPs first within the budget."""
    with open(RANKING_PROTOCOL, "rb") as f:
        ranking = tomllib.load(f)
    space = get_space(ranking["space"]["name"])
    g = ranking["ground_truth"]
    archs = stratified_sample(space, g["archs"], ranking["space"]["m"], g["sample_seed"])
    flops = CostModel(space)
    a = protocol["archs"]
    within = [arch for arch in archs if flops(arch)["flops"] <= a["max_flops"]]
    within.sort(key=lambda arch: -flops(arch)["flops"])
    return [space.format(arch) for arch in within[: a["count"]]]


def folder(name: str, index: int) -> Path:
    return ROOT / "runs" / PROTOCOL.stem / name / f"arch{index}"


def run(protocol: dict[str, Any]) -> None:
    """Train every (candidate, architecture) not yet finished, architecture by architecture."""
    torch.set_num_threads(protocol["run"]["threads"])
    d = protocol["data"]
    dataset = load_dataset(d["dataset"], val_size=d["val_size"], split_seed=d["split_seed"])
    space = get_space("fmnist-s1")
    for index, arch in enumerate(study_archs(protocol)):
        for name, fields in protocol["candidates"].items():
            log.info("%s on arch%d (%s)", name, index, arch)
            retrain_architecture(
                space,
                dataset,
                space.parse(arch, 4),
                Recipe(**fields),
                folder(name, index),
                seed=protocol["archs"]["seed"],
                progress=sys.stderr.isatty(),
            )
            table(protocol)


def table(protocol: dict[str, Any]) -> dict[str, Any]:
    """Write results.csv (every finished run) and choice.json (the rule applied to what exists)."""
    out = ROOT / "results" / PROTOCOL.stem
    rows = []
    archs = study_archs(protocol)
    for name, fields in protocol["candidates"].items():
        for index in range(len(archs)):
            path = folder(name, index) / RESULT_FILE
            if path.exists():
                r = read_json(path)
                rows.append(
                    {"candidate": name, "arch_index": index, **fields}
                    | {k: r[k] for k in ("arch", "flops", "params", "val_acc", "test_acc", "train_seconds")}
                )
    if rows:
        write_csv(out / "results.csv", rows)
    choice = choose(protocol, rows, len(archs))
    write_json(out / "choice.json", choice)
    return choice


def choose(protocol: dict[str, Any], rows: list[dict[str, Any]], n_archs: int) -> dict[str, Any]:
    """The protocol's rule over the candidates that finished on every architecture."""
    rule = protocol["rule"]
    by = {(r["candidate"], r["arch_index"]): r for r in rows}
    complete = [c for c in protocol["candidates"] if all((c, i) in by for i in range(n_archs))]
    if "current" not in complete:
        return {"decided": False, "why": "candidate 'current' has not finished on every architecture"}
    summary = {}
    for c in complete:
        ratios = [by[(c, i)]["train_seconds"] / by[("current", i)]["train_seconds"] for i in range(n_archs)]
        summary[c] = {
            "mean_val_acc": round(statistics.mean(by[(c, i)]["val_acc"] for i in range(n_archs)), 3),
            "mean_test_acc": round(statistics.mean(by[(c, i)]["test_acc"] for i in range(n_archs)), 3),
            "max_time_ratio": round(max(ratios), 3),
            "eligible": max(ratios) <= rule["max_time_ratio"],
        }
    best = max((c for c in complete if summary[c]["eligible"]), key=lambda c: summary[c]["mean_val_acc"])
    gain = summary[best]["mean_val_acc"] - summary["current"]["mean_val_acc"]
    chosen = best if gain >= rule["min_gain"] else "current"
    return {
        "decided": len(complete) == len(protocol["candidates"]),
        "finished": complete,
        "candidates": summary,
        "best_eligible": best,
        "gain_over_current": round(gain, 3),
        "chosen": chosen,
        "recipe": protocol["candidates"][chosen],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=("run", "table"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    protocol = load_protocol()
    if args.stage == "run":
        run(protocol)
    print(table(protocol))


if __name__ == "__main__":
    main()
