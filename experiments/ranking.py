"""The fmnist-s1 ranking study (issue 13): does a MixPath supernet order architectures like training them does?

Everything it does is fixed by a protocol file written before any result was seen
(``experiments/protocols/*.toml``); this script only carries it out. Stages, each resumable (run the same
command again after a kill and it continues; results are written as each piece finishes):

    python experiments/ranking.py gt --worker 0/2 &      # stand-alone ground truth, two 1-thread workers
    python experiments/ranking.py gt --worker 1/2        # (the ladder rung is chosen by the protocol's rule)
    python experiments/ranking.py status                 # what is done, seed-to-seed tau so far

Run folders (checkpoints) go to experiments/runs/<protocol name>/ (not in git); committed outputs go to
experiments/results/<protocol name>/.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import torch

from mixpath.data import load_dataset
from mixpath.io import write_json
from mixpath.ranking import GroundTruthFile, build_ground_truth, stratified_sample
from mixpath.ranking.groundtruth import GroundTruthRow
from mixpath.ranking.metrics import batched_kendall_tau, estimate
from mixpath.ranking.metrics import kendall_tau as tau_of
from mixpath.spaces import get_space
from mixpath.training.standalone import Recipe

ROOT = Path(__file__).resolve().parent
DEFAULT_PROTOCOL = ROOT / "protocols" / "fmnist-s1-ranking-2026-12-02.toml"

log = logging.getLogger("ranking")


class Study:
    """One protocol's paths, data, architecture list and ground-truth bookkeeping."""

    def __init__(self, protocol_path: Path) -> None:
        self.protocol_path = protocol_path
        self.p: dict[str, Any] = tomllib.loads(protocol_path.read_text())
        self.name = self.p["name"]
        self.results = ROOT / "results" / self.name
        self.runs = ROOT / "runs" / self.name
        self.space = get_space(self.p["space"]["name"])
        self._data = None

    def data(self):
        if self._data is None:
            d = self.p["data"]
            self._data = load_dataset(d["dataset"], val_size=d["val_size"], split_seed=d["split_seed"])
        return self._data

    def archs(self) -> list[str]:
        g = self.p["ground_truth"]
        picked = stratified_sample(self.space, g["archs"], self.p["space"]["m"], g["sample_seed"])
        return [self.space.format(a) for a in picked]

    def first_chunk(self) -> list[str]:
        return self.archs()[0::4]

    # ground truth -------------------------------------------------------------------------------------------
    def gt_dir(self, epochs: int) -> Path:
        return self.results / "groundtruth" / f"epochs{epochs}"

    def gt_rows(self, epochs: int) -> dict[tuple[str, int], GroundTruthRow]:
        """Every finished (arch, seed) at one rung, over all worker files."""
        rows = {}
        for path in sorted(self.gt_dir(epochs).glob("*.csv")):
            for row in GroundTruthFile(path).read():
                rows.setdefault((row.arch, row.seed), row)
        return rows

    def seed_tau(self, epochs: int, archs: list[str], target: str = "test") -> float | None:
        """Kendall tau between the two seeds' accuracies over ``archs`` (None until all are trained)."""
        rows = self.gt_rows(epochs)
        s0, s1 = self.p["ground_truth"]["seeds"]
        if not all((a, s) in rows for a in archs for s in (s0, s1)):
            return None
        return tau_of([rows[(a, s0)].accuracy(target) for a in archs], [rows[(a, s1)].accuracy(target) for a in archs])

    def rung(self) -> tuple[int, bool]:
        """The ladder rung the protocol's sizing rule points at now, and whether it is settled (the first
        chunk is trained with both seeds and passed) or the first chunk is still being trained at it."""
        g = self.p["ground_truth"]
        for epochs in g["epochs_ladder"]:
            tau = self.seed_tau(epochs, self.first_chunk())
            if tau is None:
                return epochs, False
            if tau >= g["min_seed_tau"]:
                return epochs, True
            log.info("rung %d epochs: seed-to-seed tau %.3f on the first chunk < %.2f", epochs, tau, g["min_seed_tau"])
        return g["epochs_ladder"][-1], True

    def gt_jobs(self, settled: bool) -> list[tuple[str, int]]:
        """(arch, seed) in training order: the first chunk, then (once the rung is settled) the rest;
        both seeds of an arch next to each other, so two workers train one arch side by side."""
        seeds = self.p["ground_truth"]["seeds"]
        chunk = self.first_chunk()
        archs = chunk + ([a for a in self.archs() if a not in chunk] if settled else [])
        return [(a, s) for a in archs for s in seeds]


def stage_gt(study: Study, worker: int, workers: int) -> None:
    """Train this worker's share of the ground-truth jobs at the protocol's rung, until none is left."""
    g = study.p["ground_truth"]
    torch.set_num_threads(g["threads_per_process"])
    while True:
        epochs, settled = study.rung()
        jobs = study.gt_jobs(settled)
        done = study.gt_rows(epochs)
        mine = [job for job in jobs[worker::workers] if job not in done]
        if not mine:
            if settled or all(job in done for job in jobs):
                if settled:
                    log.info("worker %d/%d: nothing left at %d epochs", worker, workers, epochs)
                    return
                continue  # the chunk just finished: the rule decides again
            log.info("worker %d/%d: waiting for the other worker to finish the first chunk", worker, workers)
            time.sleep(30)
            continue
        arch, seed = mine[0]
        recipe = Recipe(epochs=epochs, batch_size=g["batch_size"], lr=g["lr"])
        out = study.gt_dir(epochs) / f"worker{worker}of{workers}.csv"
        started = time.perf_counter()
        build_ground_truth(study.space, study.data(), [study.space.parse(arch, 4)], recipe, out, seed=seed)
        log.info("%s seed %d (%d epochs) in %.0f s", arch, seed, epochs, time.perf_counter() - started)


def stage_status(study: Study) -> dict[str, Any]:
    """What the ground truth holds per rung and the seed-to-seed tau so far (written to gt_status.json)."""
    g = study.p["ground_truth"]
    s0, s1 = g["seeds"]
    status: dict[str, Any] = {"protocol": study.name, "rungs": {}}
    for epochs in g["epochs_ladder"]:
        rows = study.gt_rows(epochs)
        if not rows:
            continue
        both = [a for a in study.archs() if (a, s0) in rows and (a, s1) in rows]
        entry: dict[str, Any] = {"trained": len(rows), "archs_with_both_seeds": len(both)}
        for target in ("test", "val"):
            if len(both) >= 3:
                x = [rows[(a, s0)].accuracy(target) for a in both]
                y = [rows[(a, s1)].accuracy(target) for a in both]
                entry[f"seed_tau_{target}"] = estimate(x, y, tau_of, batched_kendall_tau, 2000, 0).to_json()
        chunk_tau = study.seed_tau(epochs, study.first_chunk())
        entry["first_chunk_seed_tau_test"] = chunk_tau
        seconds = [row.seconds for row in rows.values()]
        entry["train_seconds"] = {"sum": round(sum(seconds), 1), "mean": round(sum(seconds) / len(seconds), 1)}
        accs = [row.test_acc for row in rows.values()]
        entry["test_acc_range"] = [min(accs), max(accs)]
        status["rungs"][str(epochs)] = entry
    status["rung_now"], status["settled"] = study.rung()
    write_json(study.results / "gt_status.json", status)
    print(json.dumps(status, indent=1))
    return status


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["gt", "status"])
    parser.add_argument("--protocol", type=Path, default=DEFAULT_PROTOCOL, help="the protocol file to carry out")
    parser.add_argument("--worker", default="0/1", help="gt: this worker's index and the number of workers (i/n)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    study = Study(args.protocol)
    study.results.mkdir(parents=True, exist_ok=True)
    (study.results / "protocol.toml").write_text(args.protocol.read_text())
    if args.stage == "gt":
        worker, workers = (int(v) for v in args.worker.split("/"))
        stage_gt(study, worker, workers)
    elif args.stage == "status":
        stage_status(study)


if __name__ == "__main__":
    main(sys.argv[1:])
