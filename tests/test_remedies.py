"""The ranking study's remedies driver (experiments/remedies.py) carries out a protocol, on a tiny study."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))

import ranking  # noqa: E402
import remedies  # noqa: E402
from test_ranking_study import TINY_PROTOCOL  # noqa: E402

from mixpath.errors import MixPathError  # noqa: E402
from mixpath.ranking.scoring import supernet_scores  # noqa: E402

TINY_REMEDIES = """
name = "{name}"
study = "study.toml"
[base]
from_study_choice = true
[remedies.calib]
calib_size = 256
[remedies.loss]
measure = "loss"
[remedies.smooth]
label_smoothing = 0.1
[remedies.rate]
lr = 0.2
[remedies.branchfair]
path_sampling = "branch-fair"
[selection]
target = "val"
margin = {margin}
[report]
target = "test"
"""


def write_remedies(tmp_path: Path, margin: float, name: str = "tiny-remedies") -> remedies.Remedies:
    path = tmp_path / f"{name}.toml"
    path.write_text(TINY_REMEDIES.replace("{margin}", str(margin)).replace("{name}", name))
    return remedies.Remedies(path, root=tmp_path)


@pytest.fixture(scope="module")
def studied(tmp_path_factory):
    """A tiny study with its ground truth and both 2-epoch study runs scored, so its rule has picked a recipe."""
    root = tmp_path_factory.mktemp("study")
    (root / "study.toml").write_text(TINY_PROTOCOL.replace("{min_tau}", "-1.0"))
    study = ranking.Study(root / "study.toml", root=root)
    ranking.stage_gt(study, 0, 1)
    for schedule in ("reference", "warm"):
        ranking.stage_supernet(study, "shadow", schedule, 2)
    assert ranking.stage_rank(study)["choice"]["label"]
    return root


def test_every_remedy_is_trained_or_scored_once_on_the_right_run(studied):
    rem = write_remedies(studied, margin=-10.0)  # every remedy clears: the rule asks for the combined runs
    remedies.stage_all(rem)
    saved = {p.stem: json.loads(p.read_text()) for p in (rem.results / "scores").glob("*.json")}
    assert {"base", "calib", "loss", "smooth", "rate", "branchfair"} <= set(saved)
    assert saved["calib"]["run"] == saved["loss"]["run"] == "base"  # scoring remedies train nothing
    assert set(saved["calib"]["scores"]) == {"exact"} and saved["calib"]["scoring"]["calib_size"] == 256
    assert all(v < 0 for v in saved["loss"]["scores"]["exact"].values())  # negated cross-entropy
    assert saved["smooth"]["config"]["label_smoothing"] == 0.1 and saved["rate"]["config"]["lr"] == 0.2
    base_config = json.loads(json.dumps(rem.base_config().to_json()))
    assert saved["base"]["config"] == base_config
    assert {k: v for k, v in saved["smooth"]["config"].items() if k != "label_smoothing"} == {
        k: v for k, v in base_config.items() if k != "label_smoothing"
    }
    results = json.loads((rem.results / "ranking.json").read_text())
    adoption = results["adoption"]
    combined = adoption["combined_run"]
    assert combined.count("+") == 1 and combined in saved  # the two best training remedies in one run
    expected = {k: v for part in combined.split("+") for k, v in rem.p["remedies"][part].items()}
    assert {k: saved[combined]["config"][k] for k in expected} == expected
    assert adoption["to_score"] == [] and adoption["adopted"] in saved
    assert "+" in adoption["adopted"] and adoption["adopted"].split("+")[-1] in {"calib", "loss"}
    trained = {"base", "rate", "smooth", "branchfair", combined}
    ablation_runs = {p.name for p in rem.runs.iterdir()} - trained
    assert ablation_runs == {f"ablation-{v}-{rem.run_label(adoption['adopted'])}" for v in ("shared", "spos")}
    table = results["ablation"]
    assert set(table["rows"]) == {"shadow", "shared", "spos"}
    assert set(table["paired_exact"]) == {"shadow - params", "shadow - flops", "shadow - shared"}
    spos = json.loads(next((rem.results / "ablation").glob("spos-*.json")).read_text())
    assert spos["config"]["lr"] == saved[combined]["config"]["lr"] and spos["config"]["path_sampling"] == "uniform"
    assert "## Ablation at" in (rem.results / "results.md").read_text()
    assert (rem.results / "ablation_tau.png").is_file()
    # the base repeats the study's run of the same recipe and seed: same weights, same scores
    assert results["repeat_floor"]["tau_between_repeats"] == pytest.approx(1.0)
    assert results["repeat_floor"]["max_abs_score_difference"] <= 0.01
    for name in ("results.md", "remedies_tau.png"):
        assert (rem.results / name).is_file()
    assert "paths per layer" in (rem.results / "results.md").read_text()
    before = (rem.results / "scores" / "smooth.json").read_text()
    remedies.stage_all(rem)  # all done: nothing is trained or scored again
    assert (rem.results / "scores" / "smooth.json").read_text() == before


def test_the_adoption_rule(studied):
    rem = write_remedies(studied, margin=0.05)
    rule = remedies.adopt
    assert rule(rem, {"base": 0.4, "calib": 0.44, "loss": 0.3, "smooth": 0.42, "rate": 0.2})["adopted"] == "base"
    asked = rule(rem, {"base": 0.4, "calib": 0.3, "loss": 0.3, "smooth": 0.5, "rate": 0.46})
    assert asked["adopted"] is None and asked["to_score"] == ["rate+smooth"]
    taus = {"base": 0.4, "calib": 0.3, "loss": 0.3, "smooth": 0.5, "rate": 0.46, "rate+smooth": 0.49}
    assert rule(rem, taus)["adopted"] == "smooth"  # the combination must beat the best single remedy
    taus.update({"rate+smooth": 0.55, "loss": 0.47})
    decided = rule(rem, taus)
    assert decided["adopted"] == "rate+smooth+loss" and decided["to_score"] == ["rate+smooth+loss"]
    assert rule(rem, {"base": 0.4, "calib": 0.5, "loss": 0.47, "smooth": 0.1, "rate": 0.1})["adopted"] == "calib"


def test_scores_by_loss_are_checked(studied):
    run = next((studied / "runs" / "tiny-study").iterdir())
    with pytest.raises(MixPathError, match="unknown measure 'error'; choose one of: accuracy, loss"):
        supernet_scores(run, [], measure="error")


def test_the_ablation_at_branch_fair_sampling_draws_single_paths_for_single_path_supernets(studied):
    rem = write_remedies(studied, margin=0.05, name="tiny-fair")
    (rem.results).mkdir(parents=True)
    (rem.results / "ranking.json").write_text(json.dumps({"adoption": {"adopted": "branchfair"}}))
    remedies.stage_ablation(rem)
    configs = {p.stem.split("-")[0]: json.loads(p.read_text())["config"] for p in (rem.results / "ablation").iterdir()}
    assert {v: c["path_sampling"] for v, c in configs.items()} == {
        "shadow": "branch-fair",
        "shared": "branch-fair",
        "spos": "uniform",
    }
    assert sorted(p.name for p in rem.runs.iterdir()) == [
        "ablation-shared-branchfair",
        "ablation-spos-branchfair",
        "branchfair",
    ]
