"""Remedies of the fmnist-s1 ranking study (issue 13, step 5): does one change of the chosen supernet recipe
make it rank architectures more like training them does?

Everything it does is fixed by a protocol file written before any remedy ran
(``experiments/protocols/fmnist-s1-remedies-*.toml``), on top of the study's own protocol, whose ground truth,
architectures and scoring it uses. Stages, each resumable (run the same command again after a kill):

    python experiments/remedies.py train     # the base recipe again, then each training remedy, each scored
    python experiments/remedies.py rank      # every remedy against the ground truth, the rule's adoption
    python experiments/remedies.py ablation  # the study's ablation at the adopted recipe
    python experiments/remedies.py all       # train, rank, the further runs the rule asks for, the ablation

Run folders go to experiments/runs/<protocol name>/ (not in git); committed outputs (scores, ranking.json,
results.md, remedies_tau.png) to experiments/results/<protocol name>/.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import ranking
import tomllib
import torch

from mixpath.evaluation import CalibrationSettings
from mixpath.io import write_json, write_text
from mixpath.ranking.metrics import tau_difference
from mixpath.ranking.rank import rank_scores
from mixpath.ranking.scoring import supernet_scores
from mixpath.training import TrainConfig, train_supernet

ROOT = ranking.ROOT
DEFAULT_PROTOCOL = ROOT / "protocols" / "fmnist-s1-remedies-2026-12-03.toml"
SCORING_FIELDS = ("calib_size", "measure")
"""Protocol fields that change how a run is scored; every other field of a remedy is a ``TrainConfig`` field."""

log = logging.getLogger("remedies")


class Remedies:
    """One remedies protocol: its study, the base recipe, and where each remedy's run and scores go."""

    def __init__(self, protocol_path: Path, root: Path = ROOT) -> None:
        self.p: dict[str, Any] = tomllib.loads(protocol_path.read_text())
        self.name = self.p["name"]
        self.study = ranking.Study(protocol_path.parent / self.p["study"], root)
        self.results = root / "results" / self.name
        self.runs = root / "runs" / self.name

    def base_label(self) -> str:
        """The study's pick (``<variant>-<schedule>-e<epochs>``), as its selection rule left it in ranking.json."""
        ranked = self.study.results / "ranking.json"
        choice = json.loads(ranked.read_text())["choice"] if ranked.exists() else None
        if not choice or not choice.get("label"):
            raise SystemExit(f"the study has not picked a recipe yet ({ranked}): run experiments/ranking.py rank")
        return choice["label"]

    def base_config(self) -> TrainConfig:
        variant, schedule, length = self.base_label().split("-")
        return ranking.supernet_config(self.study, variant, schedule, int(length[1:]))

    def changes(self, remedy: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(training changes, scoring changes) of a remedy; a combined remedy ``a+b`` has both's; base has none."""
        training: dict[str, Any] = {}
        scoring: dict[str, Any] = {}
        for part in remedy.split("+"):
            for key, value in ({} if part == "base" else self.p["remedies"][part]).items():
                (scoring if key in SCORING_FIELDS else training)[key] = value
        return training, scoring

    def run_label(self, remedy: str) -> str:
        """The run a remedy is scored on: the one of its training changes; the base's for scoring changes alone."""
        return "+".join(part for part in remedy.split("+") if self.changes(part)[0]) or "base"

    def scores_file(self, remedy: str) -> Path:
        return self.results / "scores" / f"{remedy}.json"


def train_run(rem: Remedies, label: str, config: TrainConfig) -> Path:
    """Train (or finish) run ``label`` with ``config``, recording the load average around it."""
    torch.set_num_threads(rem.study.p["supernet"]["threads"])
    run_dir = rem.runs / label
    if _epochs_done(run_dir) < config.epochs:  # a resumed run with other settings stops with a one-line error
        load = [round(v, 2) for v in os.getloadavg()]
        started = time.perf_counter()
        resume = (run_dir / "config.json").exists()
        train_supernet(config, run_dir, resume=resume, progress=False, dataset=rem.study.data())
        after = [round(v, 2) for v in os.getloadavg()]
        write_json(run_dir / "load.json", {"load_average_before": load, "after": after})
        log.info("%s: trained in %.0f s", label, time.perf_counter() - started)
    return run_dir


def _epochs_done(run_dir: Path) -> int:
    lines = (run_dir / "metrics.csv").read_text().splitlines() if (run_dir / "metrics.csv").exists() else []
    return max(0, len(lines) - 1)


def scored_run(rem: Remedies, run_dir: Path, scoring: dict[str, Any]) -> dict[str, Any]:
    """Scores of every study architecture the run's supernet can hold, per calibration of the study (only exact
    when the remedy changes the calibration size), with the run's settings, training record and times."""
    sc = rem.study.p["scoring"]
    size, measure = scoring.get("calib_size", sc["calib_size"]), scoring.get("measure", "accuracy")
    modes = ["exact"] if "calib_size" in scoring else sc["calibrations"]  # the size changes nothing without it
    scores, seconds = {}, {}
    for mode in modes:
        started = time.perf_counter()
        calibration = CalibrationSettings(mode, size=size, batches=sc["calib_batches"])
        scores[mode] = supernet_scores(run_dir, rem.study.archs(), calibration=calibration, measure=measure)
        seconds[mode] = round(time.perf_counter() - started, 1)
    config = json.loads((run_dir / "config.json").read_text())
    metrics = (run_dir / "metrics.csv").read_text().splitlines()
    header = metrics[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=True)) for line in metrics[1:]]
    steps_per_epoch = len(rem.study.data().train_y) // config["batch_size"]
    return {
        "epoch": len(rows),
        "training_images": len(rows) * steps_per_epoch * config["batch_size"],
        "config": config,
        "scoring": {"calib_size": size, "measure": measure},
        "train_seconds": round(sum(float(r["seconds"]) for r in rows), 1),
        "load": json.loads((run_dir / "load.json").read_text()) if (run_dir / "load.json").exists() else None,
        "score_seconds": seconds,
        "machine": ranking.machine(),
        "training": rows,
        "scores": scores,
    }


def score_remedy(rem: Remedies, remedy: str) -> dict[str, Any]:
    """The remedy's run (trained if missing) scored its way: results/<protocol>/scores/<remedy>.json."""
    out = rem.scores_file(remedy)
    if out.exists():
        return json.loads(out.read_text())
    label = rem.run_label(remedy)
    run_dir = train_run(rem, label, dataclasses.replace(rem.base_config(), **rem.changes(label)[0]))
    saved = {"remedy": remedy, "run": label, **scored_run(rem, run_dir, rem.changes(remedy)[1])}
    write_json(out, saved)
    log.info("%s scored (%s)", remedy, saved["score_seconds"])
    return saved


def adopted(rem: Remedies) -> str | None:
    """The remedy the rule adopted (``base``: none), None while it is undecided."""
    ranked = rem.results / "ranking.json"
    return json.loads(ranked.read_text())["adoption"]["adopted"] if ranked.exists() else None


def ablation_recipe(rem: Remedies, remedy: str) -> tuple[str, int, str]:
    """(schedule, epochs, recipe tag) of the ablation at a remedy: the tag ends every ablation label."""
    _, schedule, length = rem.base_label().split("-")
    return schedule, int(length[1:]), f"{schedule}-{length}-{remedy}"


def stage_ablation(rem: Remedies) -> None:
    """The study's ablation ([ablation] of its protocol) at the adopted recipe: every variant with the remedy's
    training changes (branch-fair path sampling only where paths are drawn), scored its way. With no remedy
    adopted it is the study's own ablation, trained and ranked by experiments/ranking.py."""
    remedy = adopted(rem)
    if remedy is None:
        raise SystemExit("the adoption rule has not decided yet: run experiments/remedies.py rank (or all)")
    study = rem.study
    schedule, epochs, recipe = ablation_recipe(rem, remedy)
    variants = [*study.p["ablation"]["m4"], *study.p["ablation"]["m1"]]
    if remedy == "base":
        for variant in variants:
            ranking.stage_supernet(study, variant, schedule, epochs)
        ranking.stage_rank(study)
        return
    training, scoring = rem.changes(remedy)
    for variant in variants:
        out = rem.results / "ablation" / f"{variant}-{recipe}.json"
        if out.exists():
            continue
        config = ranking.supernet_config(study, variant, schedule, epochs)
        changes = {k: v for k, v in training.items() if k != "path_sampling" or config.strategy == "mixpath"}
        config = dataclasses.replace(config, **changes)
        label = rem.run_label(remedy) if variant == "shadow" else f"ablation-{variant}-{rem.run_label(remedy)}"
        saved = {"label": f"{variant}-{recipe}", **scored_run(rem, train_run(rem, label, config), scoring)}
        write_json(out, saved)
        log.info("ablation %s scored", saved["label"])


def ablation_table(rem: Remedies, truth: dict[str, Any]) -> dict[str, Any]:
    """The ablation's table as the study builds it, from the ablation's scored runs (empty before any)."""
    remedy = adopted(rem)
    files = sorted((rem.results / "ablation").glob("*.json"))
    if remedy in (None, "base") or not files:
        return {}
    options = ranking.ranking_options(rem.study)
    entries = [ranking.snapshot_entry(json.loads(p.read_text()), truth, options) for p in files]
    choice = {"label": f"shadow-{ablation_recipe(rem, remedy)[2]}"}
    return ranking.ablation_table(rem.study, entries, truth, choice, tau_difference, options)


def stage_train(rem: Remedies) -> None:
    """The base first (its run also serves the scoring remedies), then every remedy of the protocol."""
    for remedy in ["base", *rem.p["remedies"]]:
        score_remedy(rem, remedy)


def stage_rank(rem: Remedies) -> dict[str, Any]:
    """Every scored remedy against the study's ground truth, the protocol's adoption rule, plot and summary."""
    study, sel = rem.study, rem.p["selection"]
    a = study.p["ablation"]
    _, truth, ceiling = ranking.ground_truth(study)
    options = {"resamples": a["bootstrap"], "seed": a["bootstrap_seed"], "ks": (0.1, 0.2)}
    saved = {p.stem: json.loads(p.read_text()) for p in sorted((rem.results / "scores").glob("*.json"))}
    if "base" not in saved:
        raise SystemExit("the base run is not scored yet: run experiments/remedies.py train")
    entries = {}
    for remedy, s in saved.items():
        rankings = {
            f"{mode}/{target}/all": rank_scores(scores, truth, target=target, **options)
            for mode, scores in s["scores"].items()
            for target in ("val", "test")
        }
        entries[remedy] = {"label": remedy, "complete_run": True, "scores": s["scores"], "rankings": rankings}
    tau = {remedy: ranking.tau_value(e, f"exact/{sel['target']}/all") for remedy, e in entries.items()}
    archs = sorted(truth)
    report = rem.p["report"]["target"]
    gt = [truth[x].accuracy(report) for x in archs]
    base = saved["base"]["scores"]["exact"]
    paired = {
        remedy: tau_difference(
            [s["scores"]["exact"][x] for x in archs], [base[x] for x in archs], gt, resamples=a["bootstrap"], seed=0
        ).to_json()
        for remedy, s in saved.items()
        if remedy != "base"
    }
    results = {
        "protocol": rem.name,
        "base": rem.base_label(),
        "ground_truth": {"archs": len(truth), "seed_tau": ceiling},
        "repeat_floor": repeat_floor(rem, base),
        "tau_select": tau,
        "paired_vs_base": paired,
        "adoption": adopt(rem, tau),
        "entries": {r: {k: e[k] for k in ("rankings",)} for r, e in entries.items()},
        "runs": {
            r: {k: saved[r][k] for k in ("run", "scoring", "train_seconds", "load", "score_seconds")} for r in saved
        },
        "preferences_exploratory": ranking.residual_preferences(study, list(entries.values()), truth),
    }
    write_json(rem.results / "ranking.json", results)  # the adoption first: the ablation's table reads it
    results["ablation"] = ablation_table(rem, truth)
    write_json(rem.results / "ranking.json", results)
    ranking.write_ablation_plots(results["ablation"], rem.results)
    write_plot(rem, results)
    write_summary(rem, results)
    return results


def repeat_floor(rem: Remedies, base: dict[str, float]) -> dict[str, Any] | None:
    """The base run against the study's committed run of the same recipe and seed: how far a repeat moves."""
    label = rem.base_label()
    committed = ranking.scores_file(rem.study, label, int(label.rsplit("-e", 1)[1]))
    if not committed.exists():
        return None
    before = json.loads(committed.read_text())["scores"]["exact"]
    archs = sorted(set(before) & set(base))
    return {
        "archs": len(archs),
        "max_abs_score_difference": round(max(abs(before[x] - base[x]) for x in archs), 3),
        "tau_between_repeats": round(ranking.tau_of([before[x] for x in archs], [base[x] for x in archs]), 4),
    }


def adopt(rem: Remedies, tau: dict[str, float | None]) -> dict[str, Any]:
    """The protocol's rule on the validation taus: the remedies at least ``margin`` above the base; the two best
    training remedies among them combined in one more run (kept if it beats the best single one); a scoring
    remedy among them applied to the adopted training run. ``to_score``: remedies the rule still needs."""
    margin = rem.p["selection"]["margin"]
    floor = tau["base"]
    assert floor is not None, "the base run has no exact-calibration tau"
    cleared = sorted(
        (r for r in rem.p["remedies"] if tau.get(r) is not None and tau[r] >= floor + margin), key=lambda r: -tau[r]
    )
    training = [r for r in cleared if rem.changes(r)[0]]
    scoring = [r for r in cleared if not rem.changes(r)[0]]
    combined = "+".join(sorted(training[:2])) if len(training) >= 2 else None
    decision: dict[str, Any] = {"margin": margin, "cleared": cleared, "combined_run": combined, "to_score": []}
    if combined and tau.get(combined) is None:
        decision.update(adopted=None, to_score=[combined])
        return decision
    best = training[0] if training else "base"
    if combined and tau[combined] > tau[best]:
        best = combined
    if scoring:
        best = scoring[0] if best == "base" else f"{best}+{scoring[0]}"
        if tau.get(best) is None:
            decision["to_score"] = [best]
    decision["adopted"] = best
    return decision


def write_plot(rem: Remedies, results: dict[str, Any]) -> None:
    from mixpath.reporting import interval_chart

    labels = list(results["entries"])
    series: dict[str, list] = {}
    for target in ("val", "test"):
        points = []
        for remedy in labels:
            t = results["entries"][remedy]["rankings"][f"exact/{target}/all"]["metrics"]["supernet"]["kendall_tau"]
            points.append((t["value"], t["low"], t["high"]))
        series[f"vs stand-alone {target} accuracy"] = points
    interval_chart(labels, series, rem.results / "remedies_tau.png", "Kendall tau (exact calibration)")


def write_summary(rem: Remedies, results: dict[str, Any]) -> None:
    g = results["ground_truth"]
    lines = [
        f"# {rem.name}: results",
        "",
        f"Protocol: [protocol.toml](protocol.toml), on top of the study's. Base recipe: {results['base']}. Ground "
        f"truth: {g['archs']} architectures, mean of 2 seeds; Kendall tau with 95 % bootstrap intervals.",
        "",
    ]
    lines += [f"- seed-to-seed tau ({t}): {ranking.interval_text(e)}" for t, e in g["seed_tau"].items()]
    floor = results["repeat_floor"]
    if floor:
        lines.append(
            f"- the base run repeated against the study's run of the same recipe and seed: tau between the two "
            f"{floor['tau_between_repeats']}, largest score difference {floor['max_abs_score_difference']} points"
        )
    lines += [
        "",
        "| remedy | run | train s | exact, val | exact, test | none, test | params, test | remedy - base, test |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for remedy, entry in results["entries"].items():
        r, run = entry["rankings"], results["runs"][remedy]
        diff = results["paired_vs_base"].get(remedy)
        lines.append(
            f"| {remedy} | {run['run']} | {run['train_seconds']} | {ranking.tau_cell(r.get('exact/val/all'))} | "
            f"{ranking.tau_cell(r.get('exact/test/all'))} | {ranking.tau_cell(r.get('none/test/all'))} | "
            f"{ranking.tau_cell(r.get('exact/test/all'), 'params')} | {ranking.interval_text(diff) if diff else ''} |"
        )
    lines += ["", "## Adoption (the protocol's [selection] rule, validation target)", "", "```"]
    lines += [json.dumps(results["adoption"], indent=1), "```"]
    lines += ["", "## What each rewards at equal FLOPs", ""]
    lines += ranking.preference_lines(results["preferences_exploratory"])
    lines += ranking.ablation_lines(results["ablation"])
    write_text(rem.results / "results.md", "\n".join(lines) + "\n")


def stage_all(rem: Remedies) -> None:
    """Train and score every remedy, then whatever further run or scoring the adoption rule asks for."""
    stage_train(rem)
    asked = stage_rank(rem)["adoption"]["to_score"]
    while asked:
        for remedy in asked:
            score_remedy(rem, remedy)
        asked = stage_rank(rem)["adoption"]["to_score"]
    stage_ablation(rem)
    stage_rank(rem)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["train", "rank", "ablation", "all"])
    parser.add_argument("--protocol", type=Path, default=DEFAULT_PROTOCOL, help="the remedies protocol to carry out")
    parser.add_argument("--root", type=Path, default=ROOT, help="where results/ and runs/ go")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    rem = Remedies(args.protocol, args.root)
    rem.results.mkdir(parents=True, exist_ok=True)
    (rem.results / "protocol.toml").write_text(args.protocol.read_text())
    if args.stage in ("train", "all"):
        {"train": stage_train, "all": stage_all}[args.stage](rem)
    elif args.stage == "ablation":
        stage_ablation(rem)
        stage_rank(rem)
    else:
        stage_rank(rem)


if __name__ == "__main__":
    main(sys.argv[1:])
