"""The fmnist-s1 ranking study (issue 13): does a MixPath supernet order architectures like training them does?

Everything it does is fixed by a protocol file written before any result was seen
(``experiments/protocols/*.toml``); this script only carries it out. Stages, each resumable (run the same
command again after a kill and it continues; results are written as each piece finishes):

    python experiments/ranking.py gt --worker 0/2 &      # stand-alone ground truth, two 1-thread workers
    python experiments/ranking.py gt --worker 1/2        # (the ladder rung is chosen by the protocol's rule)
    python experiments/ranking.py status                 # what is done, seed-to-seed tau so far
    python experiments/ranking.py supernet --schedule reference          # the 30-epoch study run, snapshots
    python experiments/ranking.py supernet --schedule warm --epochs 10   # a complete shorter run
    python experiments/ranking.py supernet --variant shared --schedule warm --epochs 10   # the ablation
    python experiments/ranking.py timing                 # one supernet epoch on idle cores (pause the gt first)
    python experiments/ranking.py rank                   # every metric, table and plot from what exists
    python experiments/ranking.py all                    # all of the above in order, then the ablation

A supernet run is trained in chunks up to each snapshot epoch of the protocol; each snapshot is copied aside
and scored on the ground-truth architectures at once (scores cached, so a kill loses at most one epoch).

Run folders (checkpoints) go to experiments/runs/<protocol name>/ (not in git); committed outputs go to
experiments/results/<protocol name>/.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import tomllib
import torch

from mixpath.data import load_dataset
from mixpath.errors import MixPathError
from mixpath.evaluation import CalibrationSettings
from mixpath.io import append_line, write_json, write_text
from mixpath.ranking import GroundTruthFile, build_ground_truth, stratified_sample
from mixpath.ranking.groundtruth import GroundTruthRow, bin_of, mean_paths, path_bins
from mixpath.ranking.metrics import batched_kendall_tau, estimate
from mixpath.ranking.metrics import kendall_tau as tau_of
from mixpath.ranking.scoring import supernet_scores
from mixpath.runlock import file_lock
from mixpath.spaces import get_space
from mixpath.training import Recipe, TrainConfig, train_supernet
from mixpath.training.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parent
DEFAULT_PROTOCOL = ROOT / "protocols" / "fmnist-s1-ranking-2026-12-02.toml"

log = logging.getLogger("ranking")

VARIANTS = {  # name: (strategy, m, BN policy); single-path strategies have no summed paths to normalise
    "shadow": ("mixpath", 4, "shadow"),
    "shared": ("mixpath", 4, "shared"),
    "scaled": ("mixpath", 4, "scaled"),
    "exponential": ("mixpath", 4, "exponential"),
    "spos": ("spos", 1, "shadow"),
    "fairnas": ("fairnas", 1, "shadow"),
}
FAIRNAS_PASSES = 8  # fmnist-s1's layers have 4 kernels x 2 expansions: a fairnas step trains 8 single paths


class Study:
    """One protocol's paths, data, architecture list and ground-truth bookkeeping."""

    def __init__(self, protocol_path: Path, root: Path = ROOT) -> None:
        self.protocol_path = protocol_path
        self.p: dict[str, Any] = tomllib.loads(protocol_path.read_text())
        self.name = self.p["name"]
        self.results = root / "results" / self.name
        self.runs = root / "runs" / self.name
        self.space = get_space(self.p["space"]["name"])
        self._data = None
        self._archs: list[str] | None = None

    def data(self):
        if self._data is None:
            d = self.p["data"]
            self._data = load_dataset(d["dataset"], val_size=d["val_size"], split_seed=d["split_seed"])
        return self._data

    def archs(self) -> list[str]:
        """The ground-truth architectures in the sampler's order (drawn once: the draw costs FLOPs counts)."""
        if self._archs is None:
            g = self.p["ground_truth"]
            picked = stratified_sample(self.space, g["archs"], self.p["space"]["m"], g["sample_seed"])
            self._archs = [self.space.format(a) for a in picked]
        return list(self._archs)

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
        """(arch, seed) in training order: the first chunk, then (once the rung is settled) the rest in
        chunks of the same shape (archs[1::4], archs[2::4], archs[3::4]: 3 per bin each), so that a study cut
        short holds a bin-balanced subset; both seeds of an arch next to each other, so two workers train
        one arch side by side."""
        seeds = self.p["ground_truth"]["seeds"]
        archs = self.archs()
        order = [a for k in range(4 if settled else 1) for a in archs[k::4]]
        return [(a, s) for a in order for s in seeds]


def stage_gt(study: Study, worker: int, workers: int) -> None:
    """Train ground-truth jobs at the protocol's rung until none is left: this worker's share first (every
    ``workers``-th job from ``worker`` on), then the others' from the end of the list, so that a worker that
    finishes early helps rather than idles. A job is claimed by a file lock while it trains (dropped by the
    operating system when its process ends), so two workers never train one job; rows go to this worker's
    CSV, checkpoints to the rung's shared folder, so a job killed under one worker resumes under any."""
    g = study.p["ground_truth"]
    torch.set_num_threads(g["threads_per_process"])
    while True:
        epochs, settled = study.rung()
        jobs = study.gt_jobs(settled)
        done = study.gt_rows(epochs)
        if all(job in done for job in jobs):
            if settled:
                log.info("worker %d/%d: nothing left at %d epochs", worker, workers, epochs)
                return
            continue  # the chunk just finished: the rule decides again
        mine = [job for job in jobs[worker::workers] if job not in done]
        theirs = [job for job in reversed(jobs) if job not in done and job not in mine]
        if not any(train_gt_job(study, epochs, job, worker, workers) for job in mine + theirs):
            log.info("worker %d/%d: every job left is under way in another worker; waiting", worker, workers)
            time.sleep(30)


def claim_file(study: Study, epochs: int, job: tuple[str, int]) -> Path:
    """The file whose lock (``mixpath.runlock.file_lock``) a worker holds while it trains ``job``."""
    arch, seed = job
    return study.gt_dir(epochs) / "claims" / f"{seed}-{arch}"


def train_gt_job(study: Study, epochs: int, job: tuple[str, int], worker: int, workers: int) -> bool:
    """Train one ground-truth job unless another worker holds its claim (False then)."""
    arch, seed = job
    g = study.p["ground_truth"]
    gt_dir = study.gt_dir(epochs)
    (gt_dir / "claims").mkdir(parents=True, exist_ok=True)  # made here, so that no lock's release removes it
    with contextlib.ExitStack() as claimed:
        try:
            claimed.enter_context(file_lock(claim_file(study, epochs, job)))
        except MixPathError:
            return False
        if job in study.gt_rows(epochs):
            return True  # finished by another worker since this one looked
        recipe = Recipe(epochs=epochs, batch_size=g["batch_size"], lr=g["lr"])
        out = gt_dir / f"worker{worker}of{workers}.csv"
        started = time.perf_counter()
        data, checkpoints = study.data(), gt_dir / "checkpoints"
        build_ground_truth(
            study.space,
            data,
            [study.space.parse(arch, study.p["space"]["m"])],
            recipe,
            out,
            seed=seed,
            checkpoints=checkpoints,
        )
        seconds = time.perf_counter() - started
        append_line(
            out.with_suffix(".machines.jsonl"),  # one file per worker: no two writers on one file
            json.dumps({"arch": arch, "seed": seed, "seconds": round(seconds, 1), **machine()}),
        )
        log.info("%s seed %d (%d epochs) in %.0f s", arch, seed, epochs, seconds)
    return True


def machine() -> dict[str, Any]:
    """What trained a row: float results differ between CPU models (the same arch and seed retrained to
    85.84 % on an Intel Xeon and 86.67 % on an AMD EPYC), so each ground-truth row's machine is kept."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    return {"cpu": cpu, "torch": torch.__version__, "threads": torch.get_num_threads()}


def supernet_config(study: Study, variant: str, schedule: str, epochs: int) -> TrainConfig:
    """The training settings of one supernet of the study (fairnas runs 1/8 of the epochs: equal passes)."""
    s, d = study.p["supernet"], study.p["data"]
    if s["seed"] != d["split_seed"]:  # a run's validation split is seeded by its training seed
        raise SystemExit("the protocol's supernet seed must equal its data split seed")
    strategy, m, policy = VARIANTS[variant]
    sched = s["schedules"][schedule]
    if strategy == "fairnas":
        epochs = max(1, round(epochs / FAIRNAS_PASSES))
    return TrainConfig(
        space=study.space.name,
        data=d["dataset"],
        strategy=strategy,
        m=m,
        bn_policy=policy,
        epochs=epochs,
        batch_size=s["batch_size"],
        lr=sched["lr"],
        warmup_epochs=sched["warmup_epochs"],
        seed=s["seed"],
        val_size=d["val_size"],
    )


def snapshot_epochs(study: Study, config: TrainConfig, epochs: int) -> list[int]:
    """The epochs after which a run is copied aside and scored: the protocol's checkpoints for the recipe
    study's long runs (m=4 Shadow BN), the end alone for complete shorter ones and the ablation's variants."""
    s = study.p["supernet"]
    if epochs == s["study_epochs"] and (config.strategy, config.bn_policy) == ("mixpath", "shadow"):
        return [e for e in s["checkpoints"] if e <= epochs]
    return [config.epochs]


def stage_supernet(study: Study, variant: str, schedule: str, epochs: int, threads: int | None = None) -> None:
    """Train one supernet snapshot by snapshot; copy each snapshot aside and score it at once."""
    torch.set_num_threads(threads or study.p["supernet"]["threads"])
    config = supernet_config(study, variant, schedule, epochs)
    label = f"{variant}-{schedule}-e{epochs}"
    run_dir = study.runs / label
    data = study.data()
    steps_per_epoch = len(data.train_y) // config.batch_size
    for epoch in snapshot_epochs(study, config, epochs):
        if scores_file(study, label, epoch).exists():
            continue  # scored already: its run folder (not in git) may be gone with another checkout
        snapshot = run_dir / "snapshots" / f"epoch{epoch}"
        if not (snapshot / "checkpoint.pt").exists():
            done_epoch, done_step = 0, 0
            if (run_dir / "checkpoint.pt").exists():
                state = load_checkpoint(run_dir / "checkpoint.pt")
                done_epoch, done_step = state["epoch"], state["step"]
            todo = (epoch - done_epoch) * steps_per_epoch - done_step
            started = time.perf_counter()
            if todo > 0:
                resume = (run_dir / "config.json").exists()
                train_supernet(config, run_dir, resume=resume, progress=False, dataset=data, stop_after_steps=todo)
            log.info("%s: trained to epoch %d in %.0f s", label, epoch, time.perf_counter() - started)
            partial = snapshot.with_name(snapshot.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            for name in ("config.json", "checkpoint.pt", "metrics.csv"):
                shutil.copy2(run_dir / name, partial / name)
            partial.rename(snapshot)
        score_snapshot(study, label, snapshot, epoch, steps_per_epoch * config.batch_size)


def scores_file(study: Study, label: str, epoch: int) -> Path:
    """Where a snapshot's scores are committed: results/<protocol>/supernets/<label>-epoch<E>.json."""
    return study.results / "supernets" / f"{label}-epoch{epoch}.json"


def score_snapshot(study: Study, label: str, snapshot: Path, epoch: int, images_per_epoch: int) -> None:
    """Scores of every ground-truth architecture the snapshot can hold, per calibration, with its training
    record: results/<protocol>/supernets/<label>-epoch<E>.json."""
    out = scores_file(study, label, epoch)
    if out.exists():
        return
    sc = study.p["scoring"]
    scores, seconds = {}, {}
    for mode in sc["calibrations"]:
        started = time.perf_counter()
        calibration = CalibrationSettings(mode, size=sc["calib_size"], batches=sc["calib_batches"])
        scores[mode] = supernet_scores(snapshot, study.archs(), calibration=calibration)
        seconds[mode] = round(time.perf_counter() - started, 1)
    metrics = (snapshot / "metrics.csv").read_text().splitlines()
    header = metrics[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=True)) for line in metrics[1:]]
    write_json(
        out,
        {
            "label": label,
            "epoch": epoch,
            "training_images": epoch * images_per_epoch,
            "train_seconds": round(sum(float(r["seconds"]) for r in rows), 1),
            "score_seconds": seconds,
            "threads": torch.get_num_threads(),
            "config": json.loads((snapshot / "config.json").read_text()),
            "training": rows,
            "scores": scores,
        },
    )
    log.info("%s epoch %d scored (%s)", label, epoch, seconds)


def stage_timing(study: Study, variant: str, schedule: str) -> dict[str, Any]:
    """One epoch of a supernet of the study on otherwise idle cores (results/timing-<variant>.json).

    The selection rule's time limit is for idle cores, while the study's runs shared the machine with the
    ground truth now and then, so their recorded times overstate a user's: a run's length in epochs times
    this epoch is its idle training time. The load average before and after says whether the cores were idle.
    """
    torch.set_num_threads(study.p["supernet"]["threads"])
    config = supernet_config(study, variant, schedule, 1)
    data = study.data()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        train_supernet(config, Path(tmp) / "run", progress=False, dataset=data)
        header, first = (Path(tmp) / "run" / "metrics.csv").read_text().splitlines()[:2]
        seconds = float(dict(zip(header.split(","), first.split(","), strict=True))["seconds"])
    timing = {
        "variant": variant,
        "schedule": schedule,
        "epoch_seconds": round(seconds, 1),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        **machine(),
    }
    write_json(study.results / f"timing-{variant}.json", timing)
    print(json.dumps(timing, indent=1))
    return timing


def single_path(arch: str) -> bool:
    return "+" not in arch


def ground_truth(study: Study) -> tuple[int, dict[str, GroundTruthRow], dict[str, Any]]:
    """(rung, arch -> row with the seed-mean accuracies, seed-to-seed taus) over the archs with every seed."""
    epochs, _ = study.rung()
    rows = study.gt_rows(epochs)
    seeds = study.p["ground_truth"]["seeds"]
    archs = [a for a in study.archs() if all((a, s) in rows for s in seeds)]
    truth = {}
    for a in archs:
        group = [rows[(a, s)] for s in seeds]
        truth[a] = GroundTruthRow(
            a,
            round(sum(r.val_acc for r in group) / len(group), 4),
            round(sum(r.test_acc for r in group) / len(group), 4),
            group[0].flops,
            group[0].params,
            round(sum(r.seconds for r in group), 1),
            -1,
        )
    ceiling = {}
    if len(archs) >= 3:
        for target in ("test", "val"):
            x = [rows[(a, seeds[0])].accuracy(target) for a in archs]
            y = [rows[(a, seeds[1])].accuracy(target) for a in archs]
            ceiling[target] = estimate(x, y, tau_of, batched_kendall_tau, 2000, 0).to_json()
    return epochs, truth, ceiling


def scores_files(study: Study) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((study.results / "supernets").glob("*.json"))]


def is_complete_run(entry: dict[str, Any]) -> bool:
    """A snapshot taken at the end of its run (its cosine reached 0), not part-way through a longer one."""
    return entry["epoch"] == entry["config"]["epochs"]


def stage_rank(study: Study) -> dict[str, Any]:
    """Every metric of every scored snapshot against the seed-mean ground truth, the recipe the selection
    rule picks, the ablation table with paired differences, plots and a markdown summary."""
    from mixpath.ranking.metrics import tau_difference

    epochs, truth, ceiling = ground_truth(study)
    if len(truth) < 3:
        raise SystemExit(f"only {len(truth)} ground-truth archs have every seed; nothing to rank yet")
    singles = {k: v for k, v in truth.items() if single_path(k)}
    options = ranking_options(study)
    entries = [snapshot_entry(saved, truth, options) for saved in scores_files(study)]
    results = {
        "protocol": study.name,
        "ground_truth": {"epochs": epochs, "archs": len(truth), "single_path": len(singles), "seed_tau": ceiling},
        "snapshots": entries,
        "choice": choose_recipe(study, entries),
    }
    results["ablation"] = ablation_table(study, entries, truth, results["choice"], tau_difference, options)
    results["by_path_count"] = by_path_count(study, entries, truth)
    results["equal_flops_exploratory"] = equal_flops_table(study, entries, truth)
    if len(truth) >= 5:
        results["preferences_exploratory"] = residual_preferences(study, entries, truth)
    write_json(study.results / "ranking.json", results)
    write_plots(study, results)
    write_summary(study, results)
    return results


def ranking_options(study: Study) -> dict[str, Any]:
    """The protocol's bootstrap settings and top-k fractions, as ``rank_scores`` takes them."""
    a = study.p["ablation"]
    return {"resamples": a["bootstrap"], "seed": a["bootstrap_seed"], "ks": (0.1, 0.2)}


def snapshot_entry(saved: dict[str, Any], truth: dict[str, GroundTruthRow], options: dict[str, Any]) -> dict[str, Any]:
    """A scored snapshot's record with its rankings per calibration, target and subset (all archs, for m > 1
    supernets; the single-path archs, for every supernet)."""
    from mixpath.ranking.rank import rank_scores

    singles = {k: v for k, v in truth.items() if single_path(k)}
    entry = {k: saved[k] for k in ("label", "epoch", "training_images", "train_seconds", "score_seconds")}
    entry["complete_run"] = is_complete_run(saved)
    entry["final_train_acc"] = float(saved["training"][-1]["train_acc"]) if saved["training"] else None
    entry["rankings"] = {}
    for mode, scores in saved["scores"].items():
        for target in ("val", "test"):
            for subset, gt in (("all", truth), ("single_path", singles)):
                if len(set(scores) & set(gt)) >= 3 and (subset == "single_path" or saved["config"]["m"] > 1):
                    entry["rankings"][f"{mode}/{target}/{subset}"] = rank_scores(scores, gt, target=target, **options)
    entry["scores"] = saved["scores"]
    return entry


def tau_value(entry: dict[str, Any], key: str, predictor: str = "supernet") -> float | None:
    ranking = entry["rankings"].get(key)
    return None if ranking is None else ranking["metrics"][predictor]["kendall_tau"]["value"]


def choose_recipe(study: Study, entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The protocol's selection rule, carried out mechanically: the schedule whose study run ranks best at
    its end, then among complete shadow runs that train within the time limit the best, or a shorter one
    within the tie margin. Everything is judged on the ground truth's validation accuracy."""
    sel, s = study.p["selection"], study.p["supernet"]
    key = f"exact/{sel['target']}/all"
    study_ends = {
        e["label"]: tau_value(e, key)
        for e in entries
        if e["label"].startswith("shadow-") and e["label"].endswith(f"-e{s['study_epochs']}") and e["complete_run"]
    }
    if not study_ends or None in study_ends.values():
        return None
    best_study = max(study_ends, key=lambda label: study_ends[label])
    schedule = best_study.split("-")[1]
    timing = study.results / "timing-shadow.json"
    epoch_seconds = json.loads(timing.read_text())["epoch_seconds"] if timing.exists() else None

    def idle_seconds(entry: dict[str, Any]) -> float:
        """Its training time on idle cores: measured (``timing``), else as recorded (an overestimate)."""
        return entry["train_seconds"] if epoch_seconds is None else entry["epoch"] * epoch_seconds

    candidates = [
        e
        for e in entries
        if e["label"].startswith("shadow-")
        and e["complete_run"]
        and idle_seconds(e) <= 60 * sel["max_minutes"]
        and tau_value(e, key) is not None
    ]
    if not candidates:
        return {"schedule": schedule, "label": None, "why": "no complete run trains within the time limit"}
    best = max(tau_value(e, key) for e in candidates)
    near = [e for e in candidates if tau_value(e, key) >= best - sel["tie_margin"]]
    pick = min(near, key=lambda e: (idle_seconds(e), -tau_value(e, key)))
    return {
        "schedule_of_study_runs": schedule,
        "study_run_tau": study_ends,
        "label": pick["label"],
        "tau_val_exact": tau_value(pick, key),
        "idle_train_seconds": round(idle_seconds(pick), 1),
        "idle_epoch_seconds": epoch_seconds,
        "candidates": {e["label"]: tau_value(e, key) for e in candidates},
    }


def ablation_table(study, entries, truth, choice, tau_difference, options) -> dict[str, Any]:
    """Every variant trained at the chosen recipe, on the report target, with paired differences."""
    if not choice or not choice.get("label"):
        return {}
    target = study.p["ablation"]["report_target"]
    recipe = choice["label"].split("-", 1)[1]  # schedule-eN
    finals = {e["label"].split("-")[0]: e for e in entries if e["label"].endswith(recipe) and e["complete_run"]}
    rows = {
        variant: {key: r for key, r in entry["rankings"].items() if key.split("/")[1] == target}
        for variant, entry in finals.items()
    }
    table: dict[str, Any] = {"recipe": recipe, "target": target, "rows": rows}
    if "shadow" not in finals:
        return table
    shadow = finals["shadow"]["scores"]["exact"]
    archs = sorted(set(shadow) & set(truth))
    gt = [truth[x].accuracy(target) for x in archs]
    others = {"params": {x: truth[x].params for x in archs}, "flops": {x: truth[x].flops for x in archs}}
    if "shared" in finals:
        others["shared"] = finals["shared"]["scores"]["exact"]
    table["paired_exact"] = {
        f"shadow - {name}": tau_difference(
            [shadow[x] for x in archs], [other[x] for x in archs], gt, resamples=options["resamples"], seed=0
        ).to_json()
        for name, other in others.items()
    }
    return table


def by_path_count(study: Study, entries: list[dict[str, Any]], truth: dict[str, GroundTruthRow]) -> dict[str, Any]:
    """Mean score per path-count bin, over all 48 architectures, for each snapshot and calibration, beside the
    ground truth's mean test accuracy per bin (archs with every seed): does a supernet favour a path count
    that training from scratch does not?"""
    m = study.p["space"]["m"]
    bins = path_bins(m)
    names = ["1" if low == high else f"({low:g},{high:g}]" for low, high in bins]
    archs = study.archs()
    bin_names = [names[bin_of(mean_paths(study.space.parse(a, m)), bins)] for a in archs]

    def means(values: dict[str, float]) -> dict[str, float | None]:
        out = {}
        for name in names:
            xs = [values[a] for a, b in zip(archs, bin_names, strict=True) if b == name and a in values]
            out[name] = round(sum(xs) / len(xs), 2) if xs else None
        return out

    return {
        "ground_truth_test": means({a: row.test_acc for a, row in truth.items()}),
        "snapshots": {
            f"{e['label']}@{e['epoch']}": {mode: means(scores) for mode, scores in e["scores"].items()} for e in entries
        },
    }


EQUAL_FLOPS_TOLERANCE = 0.10
"""Two architectures count as of equal FLOPs when they differ by at most this share of the larger."""


def concordance(predictor: np.ndarray, truth: np.ndarray, pairs: np.ndarray) -> float:
    """The share of ``pairs`` (rows of two indices) that ``predictor`` orders as ``truth`` does; a tie in the
    predictor counts half, pairs tied in the truth are left out (nan when none is left)."""
    d_truth = np.sign(truth[pairs[:, 0]] - truth[pairs[:, 1]])
    d_pred = np.sign(predictor[pairs[:, 0]] - predictor[pairs[:, 1]])
    kept = d_truth != 0
    if not kept.any():
        return float("nan")
    return float(np.mean(np.where(d_pred[kept] == 0, 0.5, d_pred[kept] == d_truth[kept])))


def equal_flops_concordance(
    predictors: dict[str, dict[str, float]], truth: dict[str, GroundTruthRow], target: str, resamples: int, seed: int
) -> dict[str, Any]:
    """Exploratory, not in the protocol: how often each predictor orders two architectures of equal FLOPs (within
    ``EQUAL_FLOPS_TOLERANCE``) as their ground truth does. This is the pipeline's question (which of several
    architectures at one FLOPs budget to keep), where the whole-space tau also rewards knowing that bigger
    networks do better. 95 % intervals from resampling architectures (a pair of copies of one architecture is
    no pair); the paired difference supernet - params on the same resamples."""
    archs = sorted(set(truth).intersection(*predictors.values()))
    flops = np.array([truth[a].flops for a in archs])
    gt = np.array([truth[a].accuracy(target) for a in archs])
    values = {name: np.array([p[a] for a in archs]) for name, p in predictors.items()}
    rng = np.random.default_rng(seed)

    def pairs_of(index: np.ndarray) -> np.ndarray:
        i, j = np.triu_indices(len(index), k=1)
        i, j = index[i], index[j]
        close = (np.abs(flops[i] - flops[j]) <= EQUAL_FLOPS_TOLERANCE * np.maximum(flops[i], flops[j])) & (i != j)
        return np.stack([i[close], j[close]], axis=1)

    every = pairs_of(np.arange(len(archs)))
    draws = {name: [] for name in values}
    for _ in range(resamples):
        pairs = pairs_of(rng.integers(0, len(archs), len(archs)))
        for name, v in values.items():
            draws[name].append(concordance(v, gt, pairs))

    def summary(point: float, samples: list[float]) -> dict[str, float]:
        low, high = np.nanpercentile(samples, [2.5, 97.5])
        return {"value": round(point, 4), "low": round(float(low), 4), "high": round(float(high), 4)}

    out: dict[str, Any] = {"archs": len(archs), "pairs": len(every), "tolerance": EQUAL_FLOPS_TOLERANCE}
    out["concordance"] = {name: summary(concordance(v, gt, every), draws[name]) for name, v in values.items()}
    if "params" in values:
        for name in values:
            if name != "params":
                diffs = np.array(draws[name]) - np.array(draws["params"])
                point = out["concordance"][name]["value"] - out["concordance"]["params"]["value"]
                out[f"{name} - params"] = summary(point, list(diffs))
    return out


def equal_flops_table(study: Study, entries: list[dict[str, Any]], truth: dict[str, GroundTruthRow]) -> dict[str, Any]:
    """``equal_flops_concordance`` of every complete m=4 run's exact-calibration scores, parameter count and
    FLOPs, on the report target."""
    a = study.p["ablation"]
    target = a["report_target"]
    epochs, _ = study.rung()
    rows = study.gt_rows(epochs)
    first, second = study.p["ground_truth"]["seeds"]
    one_seed = {x: rows[(x, second)] for x in truth}
    out = {  # the ceiling: how often one training seed orders such pairs as the other does
        "seed-to-seed": equal_flops_concordance(
            {"supernet": {x: rows[(x, first)].accuracy(target) for x in truth}},
            one_seed,
            target,
            a["bootstrap"],
            a["bootstrap_seed"],
        )
    }
    for e in entries:
        if not e["complete_run"] or "exact" not in e["scores"] or not any(k.endswith("/all") for k in e["rankings"]):
            continue
        predictors = {
            "supernet": e["scores"]["exact"],
            "params": {x: row.params for x, row in truth.items()},
            "flops": {x: row.flops for x, row in truth.items()},
        }
        out[e["label"]] = equal_flops_concordance(predictors, truth, target, a["bootstrap"], a["bootstrap_seed"])
    return out


def layer_features(study: Study, arch: str) -> dict[str, float]:
    """What an fmnist-s1 architecture spends its cost on: active kernels per layer, the mean size of its active
    kernels, the share of layers at expansion 6."""
    layers = study.space.parse(arch, study.p["space"]["m"]).layers
    kernels = [int(op[1:]) for layer in layers for op in layer.paths]  # ops are named k3, k5, ...
    return {
        "paths per layer": sum(len(layer.paths) for layer in layers) / len(layers),
        "kernel size": sum(kernels) / len(kernels),
        "share of e6 layers": sum(layer.option("e") == 6 for layer in layers) / len(layers),
    }


def residual_preferences(
    study: Study, entries: list[dict[str, Any]], truth: dict[str, GroundTruthRow]
) -> dict[str, Any]:
    """Exploratory, not in the protocol: at equal FLOPs, what does the ground truth reward and what does each
    complete run's supernet (exact calibration) reward? Spearman correlation of FLOPs-residualised accuracy or
    score with FLOPs-residualised features (least-squares line on FLOPs removed from each)."""
    from scipy.stats import spearmanr

    target = study.p["ablation"]["report_target"]
    archs = sorted(truth)
    flops = np.array([truth[a].flops for a in archs])
    design = np.stack([np.ones_like(flops), flops], axis=1)

    def residual(values: list[float]) -> np.ndarray:
        y = np.asarray(values, dtype=float)
        return y - design @ np.linalg.lstsq(design, y, rcond=None)[0]

    per_arch = [layer_features(study, a) for a in archs]
    features = {name: [f[name] for f in per_arch] for name in per_arch[0]}
    features["params"] = [truth[a].params for a in archs]
    features = {name: residual(values) for name, values in features.items()}
    columns = {"ground truth": residual([truth[a].accuracy(target) for a in archs])}
    for e in entries:
        if e["complete_run"] and "exact" in e["scores"] and set(archs) <= set(e["scores"]["exact"]):
            if any(key.endswith("/all") for key in e["rankings"]):
                columns[e["label"]] = residual([e["scores"]["exact"][a] for a in archs])
    return {
        "archs": len(archs),
        "rho": {
            feature: {name: round(float(spearmanr(values, x)[0]), 3) for name, values in columns.items()}
            for feature, x in features.items()
        },
    }


def write_plots(study: Study, results: dict[str, Any]) -> None:
    from mixpath.reporting import interval_curves

    key = "exact/test/all"
    study_suffix = f"-e{study.p['supernet']['study_epochs']}"
    series: dict[str, list] = {}
    for e in results["snapshots"]:
        if not e["label"].startswith("shadow-") or key not in e["rankings"]:
            continue
        kind = "30-epoch run" if e["label"].endswith(study_suffix) else "complete shorter runs"
        tau = e["rankings"][key]["metrics"]["supernet"]["kendall_tau"]
        name = f"{e['label'].split('-')[1]} schedule, {kind}"
        series.setdefault(name, []).append((e["training_images"], tau["value"], tau["low"], tau["high"]))
    references = {}
    ceiling = results["ground_truth"]["seed_tau"].get("test")
    if ceiling:
        references["seed-to-seed tau (ceiling)"] = ceiling["value"]
    ranked = [e for e in results["snapshots"] if key in e["rankings"]]
    if ranked:
        references["params as predictor"] = ranked[0]["rankings"][key]["metrics"]["params"]["kendall_tau"]["value"]
    if series:
        interval_curves(
            series,
            study.results / "tau_vs_images.png",
            "training images seen by the supernet",
            "Kendall tau vs stand-alone test accuracy",
            references,
        )
    write_ablation_plots(results.get("ablation") or {}, study.results)


def write_ablation_plots(table: dict[str, Any], folder: Path) -> None:
    """The ablation's scatter grid (exact calibration) and its tau chart with intervals, into ``folder``."""
    from mixpath.reporting import interval_chart, ranking_scatter_grid

    if not table.get("rows"):
        return
    grid, labels, points = {}, [], {"none": [], "exact": []}
    for variant, rankings in table["rows"].items():
        subset = "all" if f"exact/{table['target']}/all" in rankings else "single_path"
        if f"exact/{table['target']}/{subset}" not in rankings:
            continue  # a single-path supernet with fewer than 3 single-path archs in the ground truth so far
        grid[f"{variant} ({subset})"] = rankings[f"exact/{table['target']}/{subset}"]
        labels.append(f"{variant}\n({subset.replace('_', '-')})")
        for mode, values in points.items():  # a calibration a variant was not scored with: no point
            ranked = rankings.get(f"{mode}/{table['target']}/{subset}")
            tau = ranked["metrics"]["supernet"]["kendall_tau"] if ranked else {"value": math.nan}
            values.append((tau["value"], tau.get("low", math.nan), tau.get("high", math.nan)))
    ranking_scatter_grid(grid, folder / "ablation_scatter.png", columns=3)
    series = {
        f"calibration {mode}": values for mode, values in points.items() if not all(math.isnan(v[0]) for v in values)
    }
    interval_chart(labels, series, folder / "ablation_tau.png", "Kendall tau")


def tau_cell(ranking: dict[str, Any] | None, predictor: str = "supernet") -> str:
    if ranking is None:
        return "-"
    tau = ranking["metrics"][predictor]["kendall_tau"]
    return f"{tau['value']:.3f} [{tau['low']:.2f}, {tau['high']:.2f}] (n={ranking['n_archs']})"


def interval_text(est: dict[str, float]) -> str:
    return f"{est['value']:.3f} [{est['low']:.3f}, {est['high']:.3f}]"


def write_summary(study: Study, results: dict[str, Any]) -> None:
    g = results["ground_truth"]
    lines = [
        f"# {study.name}: results",
        "",
        f"Protocol: [protocol.toml](protocol.toml). Ground truth: {g['archs']} architectures ({g['single_path']} "
        f"single-path), {g['epochs']} epochs each, the mean of 2 seeds.",
        "",
    ]
    lines += [f"- seed-to-seed Kendall tau ({t} accuracy): {interval_text(e)}" for t, e in g["seed_tau"].items()]
    lines += [
        "",
        "## Supernet snapshots, Kendall tau [95 % bootstrap] (n = architectures)",
        "",
        "| snapshot | images | train s | exact, test | none, test | exact, val | params, test |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in results["snapshots"]:
        subset = "all" if "exact/test/all" in e["rankings"] else "single_path"
        r = {key.rsplit("/", 1)[0]: v for key, v in e["rankings"].items() if key.endswith(f"/{subset}")}
        lines.append(
            f"| {e['label']} @ epoch {e['epoch']} | {e['training_images']:,} | {e['train_seconds']} | "
            f"{tau_cell(r.get('exact/test'))} | {tau_cell(r.get('none/test'))} | {tau_cell(r.get('exact/val'))} | "
            f"{tau_cell(r.get('exact/test'), 'params')} |"
        )
    lines += ["", "## Recipe choice (the protocol's [selection] rule)", "", "```"]
    lines += [json.dumps(results["choice"], indent=1), "```"]
    paths = results["by_path_count"]
    names = list(paths["ground_truth_test"])
    lines += ["", "## Mean score per path-count bin (mean active kernels per layer; all 48 archs per snapshot)", ""]
    lines += ["| snapshot | calibration | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    gt = paths["ground_truth_test"]
    lines.append("| ground truth (test acc, archs with both seeds) | | " + " | ".join(str(gt[n]) for n in names) + " |")
    for label, per_mode in paths["snapshots"].items():
        for mode, row in per_mode.items():
            lines.append(f"| {label} | {mode} | " + " | ".join(str(row[n]) for n in names) + " |")
    equal = results.get("equal_flops_exploratory") or {}
    if equal:
        lines += ["", "## Exploratory (not in the protocol): ordering architectures of equal FLOPs", ""]
        lines += [
            "The share of pairs of architectures within 10 % FLOPs of each other that a predictor orders as the "
            "ground truth does (0.5: a coin; test target; exact calibration; 95 % intervals over resampled "
            "architectures). The pipeline's choice at one FLOPs budget is this question.",
            "",
            "| complete run | archs | pairs | supernet | params | FLOPs | supernet - params |",
            "|---|---|---|---|---|---|---|",
        ]
        ceiling = equal.get("seed-to-seed")
        if ceiling:
            c = ceiling["concordance"]["supernet"]
            lines.append(
                f"| ceiling: one training seed against the other | {ceiling['archs']} | {ceiling['pairs']} | "
                f"{interval_text(c)} | | | |"
            )
        for label, row in equal.items():
            if label == "seed-to-seed":
                continue
            c = row["concordance"]
            lines.append(
                f"| {label} | {row['archs']} | {row['pairs']} | {interval_text(c['supernet'])} | "
                f"{interval_text(c['params'])} | {interval_text(c['flops'])} | "
                f"{interval_text(row['supernet - params'])} |"
            )
    preferences = results.get("preferences_exploratory")
    if preferences:
        lines += ["", "## Exploratory (not in the protocol): what is rewarded at equal FLOPs", ""]
        lines += preference_lines(preferences)
    lines += ablation_lines(results.get("ablation") or {})
    write_text(study.results / "results.md", "\n".join(lines) + "\n")


def preference_lines(preferences: dict[str, Any]) -> list[str]:
    """``residual_preferences`` as a markdown table: one row per feature, one column per predictor."""
    names = list(next(iter(preferences["rho"].values())))
    lines = [
        f"Spearman rho between a feature and the accuracy or supernet score (exact calibration), both with their "
        f"least-squares line on FLOPs removed, over the {preferences['archs']} ground-truth architectures.",
        "",
        "| feature | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for feature, row in preferences["rho"].items():
        lines.append(f"| {feature} | " + " | ".join(f"{row[n]:+.2f}" for n in names) + " |")
    return lines


def ablation_lines(table: dict[str, Any]) -> list[str]:
    """The ablation as markdown: per variant and calibration, tau, Spearman rho and top-10 % precision with
    their intervals, beside params and FLOPs on the same architectures; then the paired differences."""
    if not table.get("rows"):
        return []
    target = table["target"]
    lines = [
        "",
        f"## Ablation at {table['recipe']} ({target} target; 95 % bootstrap intervals; n = architectures)",
        "",
        "| supernet | archs | calibration | Kendall tau | Spearman rho | top-10 % | params: tau | FLOPs: tau |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for variant, rankings in table["rows"].items():
        subset = "all" if f"exact/{target}/all" in rankings else "single_path"
        for mode in ("exact", "none"):
            r = rankings.get(f"{mode}/{target}/{subset}")
            if r is None:
                continue
            m = r["metrics"]["supernet"]
            lines.append(
                f"| {variant} | {subset.replace('_', '-')} ({r['n_archs']}) | {mode} | "
                f"{interval_text(m['kendall_tau'])} | {interval_text(m['spearman_rho'])} | "
                f"{interval_text(m['top10%'])} | "
                f"{interval_text(r['metrics']['params']['kendall_tau'])} | "
                f"{interval_text(r['metrics']['flops']['kendall_tau'])} |"
            )
    if table.get("paired_exact"):
        lines += ["", f"Paired differences (exact calibration, {target} target, all architectures):", ""]
        lines += [f"- tau({name}): {interval_text(est)}" for name, est in table["paired_exact"].items()]
    return lines


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


def stage_all(study: Study, args: argparse.Namespace) -> None:
    """Everything the protocol asks, in order, each piece resumable: the ground truth (two pinned 1-thread
    worker processes), the recipe study's supernets, the idle timing, the rule's choice, then the ablation's
    variants at the chosen recipe, and the final ranking. Run it again after a kill and it continues."""
    s = study.p["supernet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    command = [sys.executable, str(Path(__file__).resolve()), "gt", "--protocol", str(args.protocol)]
    command += ["--root", str(args.root)]
    cores = sorted(os.sched_getaffinity(0))
    workers = [
        subprocess.Popen(
            [*command, "--worker", f"{w}/2"],
            env=env,
            preexec_fn=lambda w=w: os.sched_setaffinity(0, {cores[w % len(cores)]}),
        )
        for w in range(2)
    ]
    if any(worker.wait() != 0 for worker in workers):
        raise SystemExit("a ground-truth worker failed; see its log above")
    for schedule in s["schedules"]:
        stage_supernet(study, "shadow", schedule, s["study_epochs"])
    results = stage_rank(study)
    schedule = (results["choice"] or {}).get("schedule_of_study_runs")
    if schedule is None:
        raise SystemExit("the study runs are not scored yet; nothing to choose from")
    for epochs in s["short_runs_epochs"]:
        stage_supernet(study, "shadow", schedule, epochs)
    if not (study.results / "timing-shadow.json").exists():
        log.info("timing one epoch: the ground truth is done, so the cores are as idle as this machine gets")
        stage_timing(study, "shadow", schedule)
    label = stage_rank(study)["choice"]["label"]
    if label is None:
        raise SystemExit("no complete run trains within the protocol's time limit")
    _, schedule, length = label.split("-")
    for variant in [*study.p["ablation"]["m4"], *study.p["ablation"]["m1"]]:
        stage_supernet(study, variant, schedule, int(length[1:]))
    stage_rank(study)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["gt", "status", "supernet", "timing", "rank", "all"])
    parser.add_argument("--protocol", type=Path, default=DEFAULT_PROTOCOL, help="the protocol file to carry out")
    parser.add_argument("--root", type=Path, default=ROOT, help="where results/ and runs/ go")
    parser.add_argument("--worker", default="0/1", help="gt: this worker's index and the number of workers (i/n)")
    parser.add_argument("--variant", default="shadow", choices=list(VARIANTS), help="supernet: BN policy/strategy")
    parser.add_argument("--schedule", default="reference", help="supernet: a schedule of the protocol")
    parser.add_argument("--epochs", type=int, default=None, help="supernet: run length (default: the study's)")
    parser.add_argument("--threads", type=int, default=None, help="supernet: torch threads (default: protocol's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    study = Study(args.protocol, args.root)
    study.results.mkdir(parents=True, exist_ok=True)
    (study.results / "protocol.toml").write_text(args.protocol.read_text())
    if args.stage == "gt":
        worker, workers = (int(v) for v in args.worker.split("/"))
        stage_gt(study, worker, workers)
    elif args.stage == "status":
        stage_status(study)
    elif args.stage == "supernet":
        epochs = args.epochs or study.p["supernet"]["study_epochs"]
        stage_supernet(study, args.variant, args.schedule, epochs, args.threads)
    elif args.stage == "timing":
        stage_timing(study, args.variant, args.schedule)
    elif args.stage == "rank":
        stage_rank(study)
    elif args.stage == "all":
        stage_all(study, args)


if __name__ == "__main__":
    main(sys.argv[1:])
