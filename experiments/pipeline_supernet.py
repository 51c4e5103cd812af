"""Which schedule the pipeline's one-epoch supernet should train with: the protocol
experiments/protocols/pipeline-supernet-2026-12-03.toml, carried out.

    python experiments/pipeline_supernet.py        # two one-epoch supernets (~1.5 min each idle), scored, ranked

Each run trains into experiments/runs/<name>/<schedule>/ and is scored on the ranking study's architectures
(results/<name>/<schedule>.json); both steps are skipped when their output exists, so a rerun after the ranking
study's ground truth grows only re-ranks. results/<name>/results.json and results.md hold the taus, the paired
difference and the rule's decision.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import tomllib
import torch

from mixpath.evaluation import CalibrationSettings
from mixpath.io import read_json, write_json, write_text
from mixpath.ranking.metrics import tau_difference
from mixpath.ranking.rank import rank_scores
from mixpath.ranking.scoring import supernet_scores
from mixpath.training import TrainConfig, train_supernet

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ranking import ROOT, Study, ground_truth  # noqa: E402

PROTOCOL = ROOT / "protocols" / "pipeline-supernet-2026-12-03.toml"
log = logging.getLogger("pipeline_supernet")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    p = tomllib.loads(PROTOCOL.read_text())
    study = Study(ROOT / "protocols" / p["ranking_protocol"])
    results, runs = ROOT / "results" / p["name"], ROOT / "runs" / p["name"]
    torch.set_num_threads(2)
    sc = p["scoring"]
    scores = {}
    for schedule, sched in p["supernet"]["schedules"].items():
        out = results / f"{schedule}.json"
        if not out.exists():
            config = TrainConfig(
                space=study.space.name,
                data=study.p["data"]["dataset"],
                epochs=p["supernet"]["epochs"],
                lr=sched["lr"],
                warmup_epochs=sched["warmup_epochs"],
                seed=study.p["data"]["split_seed"],
                val_size=study.p["data"]["val_size"],
            )
            run_dir = runs / schedule
            trained = train_supernet(config, run_dir, resume=(run_dir / "config.json").exists(), progress=False)
            calibration = CalibrationSettings(sc["calibration"], size=sc["calib_size"])
            write_json(
                out,
                {
                    "schedule": schedule,
                    "training": trained.last,
                    "scores": supernet_scores(run_dir, study.archs(), calibration=calibration),
                },
            )
        scores[schedule] = read_json(out)["scores"]
    epochs, truth, ceiling = ground_truth(study)
    options = {"resamples": sc["bootstrap"], "seed": sc["bootstrap_seed"]}
    taus = {
        schedule: {
            target: rank_scores(s, truth, target=target, **options)["metrics"]["supernet"]["kendall_tau"]
            for target in ("val", "test")
        }
        for schedule, s in scores.items()
    }
    rule = p["rule"]
    archs = sorted(set(truth) & set(scores["reference"]) & set(scores["current"]))
    difference = tau_difference(
        [scores["reference"][a] for a in archs],
        [scores["current"][a] for a in archs],
        [truth[a].accuracy(rule["target"]) for a in archs],
        resamples=sc["bootstrap"],
        seed=sc["bootstrap_seed"],
    ).to_json()
    gain = taus["reference"][rule["target"]]["value"] - taus["current"][rule["target"]]["value"]
    decision = "reference" if gain >= rule["margin"] else "current"
    summary = {
        "protocol": p["name"],
        "ground_truth": {"epochs": epochs, "archs": len(truth), "seed_tau": ceiling},
        "tau": taus,
        "reference_minus_current": {rule["target"]: difference},
        "decision": decision,
    }
    write_json(results / "results.json", summary)
    lines = [
        f"# {p['name']}: results",
        "",
        f"Protocol: experiments/protocols/{PROTOCOL.name}. Ground truth: {len(truth)} architectures with both seeds "
        f"({epochs} epochs each).",
        "",
        "| schedule | tau vs val | tau vs test |",
        "|---|---|---|",
        *(f"| {s} | {_fmt(t['val'])} | {_fmt(t['test'])} |" for s, t in taus.items()),
        "",
        f"Paired tau(reference) - tau(current), {rule['target']}: {_fmt(difference)}. Decision: **{decision}**.",
        "",
    ]
    write_text(results / "results.md", "\n".join(lines))
    print("\n".join(lines))


def _fmt(estimate: dict) -> str:
    return f"{estimate['value']:.3f} [{estimate['low']:.2f}, {estimate['high']:.2f}]"


if __name__ == "__main__":
    main()
