"""Searchers on a synthetic evaluator: validity, constraints, budget, determinism, resume, results."""

import json
import time
from dataclasses import replace

import numpy as np
import pytest

from mixpath.errors import MixPathError
from mixpath.search import SearchConfig, SearchResult, list_searchers, make_searcher
from mixpath.search.objectives import minimised
from mixpath.search.pareto import hypervolume, non_dominated
from mixpath.search.session import STATE_FILE
from mixpath.search.synthetic import SyntheticEvaluator
from mixpath.spaces import Architecture, get_space

ALGORITHMS = ["nsga2", "evolution", "random"]


def run(name, space_name="tiny", m=2, cost_model=True, evaluator=None, **config):
    space = get_space(space_name)
    evaluator = evaluator or SyntheticEvaluator(space, m)
    settings = {"budget": 60, "population": 12, "seed": 0, **config}
    result = make_searcher(name).run(
        space, m, evaluator, SearchConfig(**settings), cost_model=evaluator.costs if cost_model else None
    )
    return result, evaluator


def arch_strings(result):
    return [str(e.arch) for e in result.evaluated]


def untimed(history):
    """A search history without its wall-clock scoring time, which no two runs share."""
    return [{key: value for key, value in entry.items() if key != "score_seconds"} for entry in history]


def front_points(result):
    return [(str(e.arch), e.metrics["accuracy"], e.metrics["flops"]) for e in result.front]


class FailingEvaluator(SyntheticEvaluator):
    """Dies on its ``fail_on``-th evaluate call, like a search killed mid-generation."""

    def __init__(self, *args, fail_on, **kwargs):
        super().__init__(*args, **kwargs)
        self.fail_on = fail_on

    def evaluate(self, archs):
        if len(self.batches) + 1 == self.fail_on:
            raise KeyboardInterrupt
        return super().evaluate(archs)


# --- pareto utilities ---------------------------------------------------------------------------


def test_non_dominated_and_hypervolume_by_hand():
    F = np.array([[1.0, 5.0], [2.0, 2.0], [3.0, 3.0], [2.0, 2.0], [5.0, 1.0], [6.0, 6.0]])
    assert non_dominated(F).tolist() == [True, True, False, True, True, False]
    # boxes to (6, 6): [1,6]x[5,6] = 5, [2,6]x[2,5] = 12, [5,6]x[1,2] = 1
    assert hypervolume(F, np.array([6.0, 6.0])) == pytest.approx(18.0)
    assert hypervolume(F[[5]], np.array([6.0, 6.0])) == 0.0
    assert hypervolume(np.empty((0, 2)), np.array([6.0, 6.0])) == 0.0


# --- registry and config ------------------------------------------------------------------------


def test_make_searcher_names_and_errors():
    assert list_searchers() == ["evolution", "fbnet", "nsga2", "random"]
    assert {make_searcher(name).name for name in ALGORITHMS} == set(ALGORITHMS)
    with pytest.raises(
        MixPathError, match="unknown search algorithm 'nsga3'; choose one of: evolution, fbnet, nsga2, random"
    ):
        make_searcher("nsga3")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"objectives": ("accuracy", "energy")}, "unknown objective 'energy'"),
        ({"objectives": ()}, "at least one objective"),
        ({"constraints": {"latencyy": 3.0}}, "unknown constraint metric 'latencyy'"),
        ({"budget": 0}, "budget=0 must be a whole number >= 1"),
        ({"population": 1}, "population=1"),
        ({"mutation_prob": 1.5}, "mutation_prob=1.5"),
        ({"reference": {"params": 1.0}}, "'params', which is not an objective"),
    ],
)
def test_config_rejects_bad_settings(settings, message):
    with pytest.raises(MixPathError, match=message):
        SearchConfig(**settings)


# --- the searchers ------------------------------------------------------------------------------


@pytest.mark.parametrize("space_name", ["tiny", "cifar-s1"])
def test_nsga2_evaluates_only_valid_new_architectures_in_one_call_per_generation(space_name):
    result, evaluator = run("nsga2", space_name, m=3, budget=70, population=14)
    space = get_space(space_name)
    for arch in evaluator.evaluated:  # the strict evaluator validated them too
        space.validate(arch, 3)
    assert len(evaluator.evaluated) == 70 == len(set(evaluator.evaluated))
    assert evaluator.batches == [14] * 5
    assert arch_strings(result) == [str(a) for a in evaluator.evaluated]
    assert [h["evaluated"] for h in result.history] == [14, 28, 42, 56, 70]


class SlowEvaluator(SyntheticEvaluator):
    """Takes 20 ms per call, as a real evaluator takes seconds."""

    def evaluate(self, archs):
        time.sleep(0.02)
        return super().evaluate(archs)


def test_history_counts_the_wall_time_spent_scoring_and_a_resume_carries_it_on(tmp_path):
    space = get_space("tiny")
    config = SearchConfig(budget=12, population=6, seed=0)
    first = make_searcher("nsga2").run(space, 2, SlowEvaluator(space, 2), config, state_dir=tmp_path)
    times = [entry["score_seconds"] for entry in first.history]
    assert len(times) == 2 and 0.02 <= times[0] < times[1]  # one evaluator call per generation, summed
    longer = make_searcher("nsga2").run(
        space, 2, SlowEvaluator(space, 2), replace(config, budget=18), state_dir=tmp_path, resume=True
    )
    assert [entry["score_seconds"] for entry in longer.history][:2] == times
    assert longer.history[2]["score_seconds"] >= times[1] + 0.02


class ReportingEvaluator(SyntheticEvaluator):
    """Calls ``on_scored`` after each architecture, as ``SupernetEvaluator`` does."""

    on_scored = None

    def evaluate(self, archs):
        results = []
        for arch in archs:
            results += super().evaluate([arch])
            if self.on_scored is not None:
                self.on_scored(arch)
        return results


class RecordingBar:
    """A stand-in for tqdm that remembers every position the bar showed."""

    def __init__(self, total, initial, **kwargs):
        self.n, self.positions = initial, []
        bars.append(self)

    def update(self, n=1):
        self.n += n
        self.positions.append(self.n)

    def set_postfix(self, **kwargs):
        pass

    def close(self):
        pass


bars = []


def test_nsga2_progress_moves_per_evaluated_architecture_and_the_search_stays_the_same(monkeypatch):
    monkeypatch.setattr("mixpath.search.session.tqdm", RecordingBar)
    space = get_space("tiny")
    config = SearchConfig(budget=24, population=6, seed=0)
    reporting = make_searcher("nsga2").run(space, 2, ReportingEvaluator(space, 2), config, progress=True)
    assert set(range(1, 25)) <= set(bars[-1].positions)  # every architecture moved the bar, not every generation
    plain = make_searcher("nsga2").run(space, 2, SyntheticEvaluator(space, 2), config, progress=True)
    assert bars[-1].positions == [6, 12, 18, 24]  # an evaluator without the hook: per batch, as before
    assert reporting.evaluated == plain.evaluated and untimed(reporting.history) == untimed(plain.history)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_front_is_feasible_non_dominated_and_complete(name):
    result, _ = run(name, "cifar-s1", m=4, budget=80, population=16)
    objectives = result.config.objectives
    front = {str(e.arch) for e in result.front}
    F = np.array([minimised(e.metrics, objectives) for e in result.evaluated])
    expected = {str(e.arch) for e, keep in zip(result.evaluated, non_dominated(F), strict=True) if keep}
    assert front == expected and len(front) >= 2
    flops = [e.metrics["flops"] for e in result.front]
    assert flops == sorted(flops)
    assert [e.metrics["accuracy"] for e in result.front] == sorted(e.metrics["accuracy"] for e in result.front)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_cost_constraint_is_never_violated_with_a_cost_model(name):
    space = get_space("cifar-s1")
    evaluator = SyntheticEvaluator(space, 4)
    limit = 380.0  # about the median FLOPs of a random architecture: half the proposals are rejected
    result, _ = run(name, "cifar-s1", m=4, evaluator=evaluator, budget=60, population=12, constraints={"flops": limit})
    assert len(evaluator.evaluated) == 60
    assert all(evaluator.costs(a)["flops"] <= limit for a in evaluator.evaluated)
    assert all(e.feasible for e in result.evaluated)
    assert result.history[-1]["rejected"] > 10


def test_without_cost_model_constraints_are_judged_after_evaluation():
    result, _ = run("nsga2", "cifar-s1", m=4, cost_model=False, budget=48, constraints={"flops": 380.0})
    infeasible = [e for e in result.evaluated if not e.feasible]
    assert infeasible and all(e.metrics["flops"] > 380.0 for e in infeasible)
    assert result.front and all(e.metrics["flops"] <= 380.0 for e in result.front)


def test_accuracy_constraint_is_a_lower_bound():
    result, _ = run("random", "tiny", m=2, cost_model=False, constraints={"accuracy": 80.0})
    assert {e.feasible for e in result.evaluated} == {True, False}
    assert all(e.feasible == (e.metrics["accuracy"] >= 80.0) for e in result.evaluated)


@pytest.mark.parametrize("budget", [1, 37, 60])
def test_random_search_spends_the_budget_exactly(budget):
    result, evaluator = run("random", "cifar-s1", m=4, budget=budget, population=10)
    assert len(result.evaluated) == len(evaluator.evaluated) == budget
    assert len(set(evaluator.evaluated)) == budget
    assert max(evaluator.batches) <= 10


def test_evolution_follows_spos_generation_sizes_and_keeps_the_best_parents():
    result, evaluator = run("evolution", "cifar-s1", m=4, budget=50, population=10, top_k=3)
    assert evaluator.batches == [10] * 5
    by_generation = {}
    for e in result.evaluated:
        by_generation.setdefault(e.generation, []).append(e.metrics["accuracy"])
    means = [np.mean(by_generation[g]) for g in sorted(by_generation)]
    assert means[-1] > means[0]  # offspring of the top 3 beat random architectures


@pytest.mark.parametrize("name", ALGORITHMS)
def test_single_path_and_single_objective(name):
    result, evaluator = run(name, "tiny", m=1, objectives=("accuracy",), budget=30, population=10)
    assert len(evaluator.evaluated) == 30
    assert all(k == 1 for a in evaluator.evaluated for k in a.path_counts)
    best = max(result.evaluated, key=lambda e: e.metrics["accuracy"])
    assert [e.arch for e in result.front] == [best.arch]


@pytest.mark.parametrize("name", ALGORITHMS)
def test_same_seed_same_search_and_another_seed_another(name):
    first, _ = run(name, "cifar-s1", m=4)
    again, _ = run(name, "cifar-s1", m=4)
    other, _ = run(name, "cifar-s1", m=4, seed=1)
    assert arch_strings(first) == arch_strings(again)
    assert [h["hypervolume"] for h in first.history] == [h["hypervolume"] for h in again.history]
    assert arch_strings(first) != arch_strings(other)


def test_evaluator_missing_an_objective_is_a_clear_error():
    class NoAccuracy(SyntheticEvaluator):
        def evaluate(self, archs):
            return [{"flops": 1.0} for _ in archs]

    space = get_space("tiny")
    with pytest.raises(MixPathError, match="no 'accuracy' metric .*returned: flops"):
        make_searcher("random").run(space, 2, NoAccuracy(space, 2), SearchConfig(budget=4))
    with pytest.raises(MixPathError, match="not an evaluator"):
        make_searcher("random").run(space, 2, object(), SearchConfig(budget=4))


# --- resume -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALGORITHMS)
@pytest.mark.parametrize("constraints", [{}, {"flops": 400.0}])
def test_resume_gives_the_uninterrupted_search(name, constraints, tmp_path):
    space = get_space("cifar-s1")
    settings = {"population": 12, "seed": 3, "constraints": constraints}
    whole = run(name, "cifar-s1", m=4, budget=72, **settings)[0]

    searcher = make_searcher(name)
    evaluator = SyntheticEvaluator(space, 4)
    short = SearchConfig(budget=36, **settings)
    searcher.run(space, 4, evaluator, short, cost_model=evaluator.costs, state_dir=tmp_path)
    assert json.loads((tmp_path / STATE_FILE).read_text())["history"][-1]["generation"] == 3
    evaluator = SyntheticEvaluator(space, 4)
    resumed = searcher.run(
        space,
        4,
        evaluator,
        replace(short, budget=72),
        cost_model=evaluator.costs,
        state_dir=tmp_path,
        resume=True,
    )
    assert len(evaluator.evaluated) == 36  # only the new half is scored after resuming
    assert arch_strings(resumed) == arch_strings(whole)
    assert front_points(resumed) == front_points(whole)
    assert untimed(resumed.history) == untimed(whole.history)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_resume_after_a_crash_mid_generation(name, tmp_path):
    space = get_space("cifar-s1")
    config = SearchConfig(budget=72, population=12, seed=5, constraints={"flops": 420.0})
    whole = run(name, "cifar-s1", m=4, budget=72, population=12, seed=5, constraints={"flops": 420.0})[0]
    crashing = FailingEvaluator(space, 4, fail_on=4)
    with pytest.raises(KeyboardInterrupt):
        make_searcher(name).run(space, 4, crashing, config, cost_model=crashing.costs, state_dir=tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.name != STATE_FILE]  # no temp file left behind
    evaluator = SyntheticEvaluator(space, 4)
    resumed = make_searcher(name).run(
        space, 4, evaluator, config, cost_model=evaluator.costs, state_dir=tmp_path, resume=True
    )
    assert evaluator.batches == [12, 12, 12]
    assert arch_strings(resumed) == arch_strings(whole)
    assert front_points(resumed) == front_points(whole)


def test_resume_refuses_a_different_search(tmp_path):
    space = get_space("tiny")
    evaluator = SyntheticEvaluator(space, 2)
    make_searcher("random").run(space, 2, evaluator, SearchConfig(budget=10, population=5), state_dir=tmp_path)
    with pytest.raises(MixPathError, match="made with config population=5, this run asks 6"):
        make_searcher("random").run(
            space, 2, evaluator, SearchConfig(budget=10, population=6), state_dir=tmp_path, resume=True
        )
    with pytest.raises(MixPathError, match="made with algorithm='random', this run asks 'nsga2'"):
        make_searcher("nsga2").run(
            space, 2, evaluator, SearchConfig(budget=10, population=5), state_dir=tmp_path, resume=True
        )


# --- quality ------------------------------------------------------------------------------------


def test_nsga2_beats_random_search_at_equal_budget():
    space = get_space("cifar-s1")
    largest = SyntheticEvaluator(space, 4).costs(space.largest_architecture(4))["flops"]
    reference = {"accuracy": 80.0, "flops": largest}
    for seed in range(3):
        hv = {
            name: run(name, "cifar-s1", m=4, budget=200, population=20, seed=seed)[0].hypervolume(reference)
            for name in ("nsga2", "random")
        }
        assert hv["nsga2"] > 1.05 * hv["random"], (seed, hv)


def test_hypervolume_history_grows_and_matches_the_final_front():
    result, _ = run("nsga2", "cifar-s1", m=4, budget=96, population=16)
    hvs = [h["hypervolume"] for h in result.history]
    assert all(b >= a for a, b in zip(hvs, hvs[1:], strict=False)) and hvs[-1] > hvs[0] > 0
    assert hvs[-1] == pytest.approx(result.hypervolume())
    assert result.reference["accuracy"] == 0.0
    assert result.reference["flops"] == pytest.approx(
        SyntheticEvaluator(get_space("cifar-s1"), 4).costs(get_space("cifar-s1").largest_architecture(4))["flops"]
    )


# --- results ------------------------------------------------------------------------------------


def test_result_files_round_trip_and_plot(tmp_path):
    result, _ = run("nsga2", "tiny", m=2, budget=40, population=10, constraints={"flops": 0.3})
    result.save(tmp_path)
    lines = (tmp_path / "evaluated.csv").read_text().splitlines()
    assert lines[0] == "index,generation,arch,feasible,accuracy,flops,params,cost_seconds"
    assert len(lines) == 41
    front = json.loads((tmp_path / "front.json").read_text())
    assert [Architecture.parse(e["arch"]) for e in front] == [e.arch for e in result.front]
    assert len((tmp_path / "front.csv").read_text().splitlines()) == len(result.front) + 1
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["algorithm"] == "nsga2" and len(history["generations"]) == 4

    loaded = SearchResult.load(tmp_path, get_space("tiny"))
    assert loaded.evaluated == result.evaluated
    assert loaded.front == result.front
    assert loaded.hypervolume() == pytest.approx(result.hypervolume())
    with pytest.raises(MixPathError, match="for space 'tiny', not 'cifar-s1'"):
        SearchResult.load(tmp_path, get_space("cifar-s1"))

    png = result.plot(tmp_path / "plots" / "front.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_corrupt_state_and_results_are_clear_errors(tmp_path):
    space = get_space("tiny")
    (tmp_path / STATE_FILE).write_text('{"version": 1, "config": {}}')
    with pytest.raises(MixPathError, match="is not a search state written by mixpath"):
        make_searcher("random").run(space, 2, SyntheticEvaluator(space, 2), state_dir=tmp_path, resume=True)
    (tmp_path / STATE_FILE).write_text("{not json")
    with pytest.raises(MixPathError, match="is not valid JSON"):
        make_searcher("random").run(space, 2, SyntheticEvaluator(space, 2), state_dir=tmp_path, resume=True)
    (tmp_path / "history.json").write_text('{"space": "tiny"}')
    (tmp_path / "evaluated.json").write_text("[]")
    with pytest.raises(MixPathError, match="does not hold search results"):
        SearchResult.load(tmp_path, space)
