"""The pipeline that ends with retrained models: baselines of equal cost, the pick under a FLOPs budget, a budget
refused before anything trains, an honest verdict, and the quick setting end to end (library and command line)."""

import itertools
import json
import os
import random
import subprocess
import sys

import pytest

from mixpath.baselines import check_budget, median_flops, params_pick, random_equal_flops, uniform_smallest
from mixpath.errors import MixPathError
from mixpath.evaluation import CalibrationSettings, CostModel, layer_choices
from mixpath.pipeline import ROLES, comparison_lines, run_pipeline, verdict
from mixpath.pipeline_scale import QUICK
from mixpath.search import EvaluatedArch, SearchConfig
from mixpath.spaces import Architecture, get_space
from mixpath.training import Recipe, TrainConfig
from mixpath.workflow import choose_under_budget

ROW_KEYS = ("role", "arch", "flops", "params", "supernet_score", "val_acc", "test_acc", "train_seconds", "epochs")


@pytest.fixture(scope="module")
def tiny_costs():
    """Every tiny architecture at m=4 (27,000) with its (flops, params): the ground truth to check pickers with."""
    space = get_space("tiny")
    cost = CostModel(space)
    archs = [Architecture(layers) for layers in itertools.product(*(layer_choices(spec, 4) for spec in space.layers))]
    return space, cost, [(arch, *cost(arch).values()) for arch in archs]


def test_uniform_smallest_is_every_layers_cheapest_single_path(tiny_costs):
    space, cost, table = tiny_costs
    smallest = uniform_smallest(space, cost)
    assert cost(smallest)["flops"] == min(flops for _, flops, _ in table)
    fmnist = get_space("fmnist-s1")
    assert str(uniform_smallest(fmnist, CostModel(fmnist))) == "-".join(["e3:k3"] * 9)


def test_random_equal_flops_is_within_5_percent_and_fixed_by_its_seed(tiny_costs):
    space, cost, _ = tiny_costs
    for target, seed in itertools.product((0.3, 0.5, 0.8), range(3)):
        arch = random_equal_flops(space, 2, target, cost, seed)
        assert abs(cost(arch)["flops"] - target) <= 0.05 * target
        assert max(arch.path_counts) <= 2
        assert random_equal_flops(space, 2, target, cost, seed) == arch
    assert len({random_equal_flops(space, 4, 0.5, cost, seed) for seed in range(5)}) > 1
    with pytest.raises(MixPathError, match=r"no random architecture of tiny \(m=4\) within 5% of 0.010 M") as err:
        random_equal_flops(space, 4, 0.01, cost, 0, max_draws=100)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("budget", [0.2, 0.5, 0.75])
def test_params_pick_has_the_most_params_of_all_architectures_within_the_budget(tiny_costs, budget):
    space, cost, table = tiny_costs
    picked = cost(params_pick(space, 4, budget, cost))
    assert picked["flops"] <= budget
    assert picked["params"] == max(params for _, flops, params in table if flops <= budget)


def test_params_pick_beats_random_draws_on_fmnist_s1():
    space = get_space("fmnist-s1")
    cost = CostModel(space)
    budget = median_flops(space, 4, cost)
    picked = cost(params_pick(space, 4, budget, cost))
    rng = random.Random(0)
    draws = [cost(space.random_architecture(rng, 4)) for _ in range(500)]
    assert picked["flops"] <= budget
    assert all(picked["params"] >= draw["params"] for draw in draws if draw["flops"] <= budget)


def test_a_budget_below_the_smallest_architecture_is_one_line_naming_it(tiny_costs):
    space, cost, _ = tiny_costs
    for call in (lambda: check_budget(space, 0.05, cost), lambda: params_pick(space, 4, 0.05, cost)):
        with pytest.raises(MixPathError, match=r"no architecture of tiny fits a FLOPs budget of 0.05 M .*e3:k3") as err:
            call()
        assert "\n" not in str(err.value)


def _entry(flops, accuracy):
    return EvaluatedArch(Architecture.parse("k3"), {"accuracy": accuracy, "flops": flops}, True, 1)


def test_choose_under_budget_takes_the_most_accurate_within_the_budget():
    front = [_entry(1.0, 50.0), _entry(2.0, 60.0), _entry(3.0, 70.0)]
    assert choose_under_budget(front, 2.5) is front[1]
    assert choose_under_budget(front, 2.0) is front[1]
    assert choose_under_budget(front, 9.0) is front[2]
    with pytest.raises(MixPathError, match=r"FLOPs budget of 0.5 M multiply-adds \(its smallest has 1.000 M\)"):
        choose_under_budget(front, 0.5)
    with pytest.raises(MixPathError, match="it is empty"):
        choose_under_budget([], 0.5)


def test_an_unsatisfiable_budget_fails_before_anything_is_trained(tmp_path):
    with pytest.raises(MixPathError, match="no architecture of tiny fits a FLOPs budget of 0.01 M") as err:
        run_pipeline(tmp_path / "run", TrainConfig(space="tiny", data="digits"), max_flops=0.01, progress=False)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()


def _rows(found, random_, smallest, params, same=()):
    """Rows of the four roles with these test accuracies; roles in ``same`` share the found architecture."""
    accs = {"found": found, "random": random_, "smallest": smallest, "params": params}
    return [{"role": r, "arch": "found" if r in (*same, "found") else r, "test_acc": accs[r]} for r in ROLES]


def test_verdict_says_who_won_and_calls_small_gaps_ties():
    assert verdict(_rows(90.0, 89.0, 85.0, 89.5), 0.3, 2).startswith(
        "the found architecture beats all 3 baselines by >= 0.50 points"
    )
    lost = verdict(_rows(89.0, 89.1, 85.0, 90.0), 0.3, 1)
    assert lost.startswith("the search lost to params by 1.00 points; the found architecture beats smallest by 4.00")
    assert "it ties with random (-0.10)" in lost and "after 1 retraining epoch," in lost
    assert "differences below 0.3 points are within seed noise" in lost
    assert "mean of 3 seeds: differences below 0.29 points" in verdict(_rows(89.0, 89.1, 85.0, 90.0), 0.29, 1, 3)
    same = verdict(_rows(89.0, 88.0, 85.0, 89.0, same=("params",)), 0.3, 2)
    assert "params picked the found architecture itself" in same and "ties" not in same


def _quick(run_dir, resume=False, retrain_seeds=1):
    """The quick setting on tiny/digits, as ``mixpath pipeline --quick --space tiny --data digits`` runs it."""
    return run_pipeline(
        run_dir,
        TrainConfig(space="tiny", data="digits", epochs=QUICK.epochs, train_subset=QUICK.train_subset),
        SearchConfig(budget=QUICK.budget, population=QUICK.population),
        Recipe(epochs=QUICK.retrain_epochs),
        retrain_subset=QUICK.retrain_subset,
        calibration=CalibrationSettings(size=QUICK.calib_size),
        resume=resume,
        allow_untrained=True,  # as --quick does: one epoch on 1,000 images stays near chance
        progress=False,
        retrain_seeds=retrain_seeds,
    )


def _stamps(run_dir):
    """When every trained or scored file was last written: a resumed call that trains nothing leaves them alone."""
    files = [run_dir / "checkpoint.pt", run_dir / "eval_cache.jsonl", *sorted(run_dir.glob("retrain/*/checkpoint.pt"))]
    return {str(path): path.stat().st_mtime_ns for path in files}


@pytest.mark.slow
def test_quick_pipeline_retrains_four_roles_and_resumes_without_training(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    summary = _quick(run_dir)
    rows = json.loads((run_dir / "retrained.json").read_text())
    assert [row["role"] for row in rows] == list(ROLES) and all(tuple(row) == ROW_KEYS for row in rows)
    by_role = {row["role"]: row for row in rows}
    budget = summary["budget"]["max_flops"]
    assert "median of 1000 architectures" in summary["budget"]["rule"]
    assert by_role["found"]["flops"] <= budget and by_role["params"]["flops"] <= budget
    assert abs(by_role["random"]["flops"] - by_role["found"]["flops"]) <= 0.05 * by_role["found"]["flops"]
    assert by_role["smallest"]["arch"] == "e3:k3-e3:k3-e3:k3"
    assert all(0 <= row["supernet_score"] <= 100 and 0 <= row["test_acc"] <= 100 for row in rows)
    assert (run_dir / "retrained.csv").read_text().splitlines()[0] == ",".join(ROW_KEYS)
    report = (run_dir / "report.html").read_text()
    assert all(f"<td>{role}</td><td><code>{by_role[role]['arch']}</code>" in report for role in ROLES)
    for name in ("model.pt", "model.pt2", "model.json"):
        assert (run_dir / "export" / name).is_file()
    exported = json.loads((run_dir / "export" / "model.json").read_text())
    assert exported["arch"] == by_role["found"]["arch"]
    assert exported["metrics"]["test_acc"] == by_role["found"]["test_acc"]
    assert all((run_dir / "retrain" / role / "result.json").is_file() for role in ROLES)
    assert summary["verdict"] and json.loads((run_dir / "pipeline.json").read_text())["rows"] == rows

    def no_training(*args, **kwargs):
        raise AssertionError("a finished retraining was trained again")

    monkeypatch.setattr("mixpath.retraining.train_standalone", no_training)
    before = _stamps(run_dir)
    again = _quick(run_dir, resume=True)
    assert _stamps(run_dir) == before
    assert again["rows"] == rows and again["verdict"] == summary["verdict"]

    monkeypatch.undo()  # a second seed per role: only its four retrainings run, the first seed's are kept
    two = _quick(run_dir, resume=True, retrain_seeds=2)
    assert _stamps(run_dir) == {**before, **{k: v for k, v in _stamps(run_dir).items() if "-seed1" in k}}
    for row, first in zip(two["rows"], rows, strict=True):
        second = json.loads((run_dir / "retrain" / f"{row['role']}-seed1" / "result.json").read_text())
        assert second["seed"] == 1 and row["seeds"] == 2 and row["arch"] == first["arch"]
        assert row["test_acc"] == pytest.approx((first["test_acc"] + second["test_acc"]) / 2, abs=1e-3)
    assert "mean of 2 seeds" in two["verdict"] and two["retraining"]["seeds"] == [0, 1]
    assert "sd (seeds)" in comparison_lines(two["rows"])[0] and "sd over seeds" in (run_dir / "report.html").read_text()


def _mixpath(*args):
    code = "import sys; from mixpath.cli import main; sys.argv = ['mixpath'] + sys.argv[1:]; main()"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_quick_pipeline_command_prints_the_table_verdict_and_where_things_are(tmp_path):
    run_dir = tmp_path / "demo"
    result = _mixpath("pipeline", str(run_dir), "--quick", "--space", "tiny", "--data", "digits")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "FLOPs budget:" in out and "M multiply-adds (median of 1000 architectures" in out
    header = next(line for line in out.splitlines() if "FLOPs (M MACs)" in line)
    for title in ("params (M)", "supernet score (%)", "test acc (%)", "train (s)"):
        assert title in header
    assert all(f"  {role} " in out for role in ROLES)
    assert "verdict: " in out and "within seed noise" in out
    for path in (run_dir / "retrained.csv", run_dir / "report.html", run_dir / "export"):
        assert str(path) in out and path.exists()
    recipe = json.loads((run_dir / "pipeline.json").read_text())["retraining"]["recipe"]
    assert (recipe["lr"], recipe["label_smoothing"], recipe["epochs"]) == (0.1, 0.1, 1)  # the study's pick, --quick
    other = _mixpath(
        "pipeline", str(run_dir), "--quick", "--space", "tiny", "--data", "digits", "--resume", "--retrain-epochs", "2"
    )  # other retraining settings on a finished run: say what to do
    error = other.stderr.strip().splitlines()[-1]
    assert other.returncode == 2 and error.startswith("error: ") and "Traceback" not in other.stderr, other.stderr
    assert "recipe.epochs: 1 there, 2 asked" in error and f"delete {run_dir / 'retrain'}" in error
    exported = _mixpath("export", str(run_dir), "--out", str(tmp_path / "again"))
    assert exported.returncode == 0, exported.stderr
    assert f"retrained from scratch in {run_dir / 'retrain' / 'found'}" in exported.stdout
    assert "test_acc" in exported.stdout
