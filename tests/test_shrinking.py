"""BS-NAS shrinking (``--shrink-at``): the worst ops are dropped, never sampled again, kept across a resume."""

import json
from functools import partial

import pytest
import torch
from short_runs import short_run_config, two_layer_space

import mixpath.training.trainer as trainer
from mixpath.errors import MixPathError
from mixpath.search import SearchConfig
from mixpath.training import load_run, train_supernet
from mixpath.training.checkpoint import load_checkpoint
from mixpath.training.shrinking import SHRINK_FILE, drop_worst
from mixpath.training.trainer import CHECKPOINT_FILE
from mixpath.workflow import search_supernet

SPACE = two_layer_space("shrink-test", "two layers, three ops", ops=("k3", "k5", "k7"), expansions=(1,))
# 64 training images in 2 steps per epoch (32 held out); the point 0.5 of 4 steps is before step 2
_config = partial(short_run_config, "shrink-test", strategy="spos", shrink_at=(0.5,), shrink_archs=3)


def test_the_worst_op_of_each_layer_is_dropped():
    scores = [{"k3": 50.0, "k5": 20.0, "k7": 30.0}, {"k3": 10.0, "k5": 40.0, "k7": 10.0}]
    assert drop_worst(SPACE, scores, 1) == [["k3", "k7"], ["k3", "k5"]]  # a tie drops the later op
    assert drop_worst(SPACE, scores, 2) == [["k3"], ["k5"]]


def test_dropped_ops_are_never_sampled_after_the_point_and_search_keeps_to_survivors(tmp_path, digits_96, monkeypatch):
    drawn = []
    step = trainer.train_step

    def recording(state, xb, yb, archs, *args, **kw):
        drawn.append((state.epoch * 2 + state.step, archs))
        return step(state, xb, yb, archs, *args, **kw)

    monkeypatch.setattr(trainer, "train_step", recording)
    train_supernet(_config(epochs=3, shrink_at=(1 / 3, 2 / 3)), tmp_path / "run", progress=False, dataset=digits_96)
    record = json.loads((tmp_path / "run" / SHRINK_FILE).read_text())
    assert [point["step"] for point in record["history"]] == [2, 4]
    assert record["history"][0]["survivors"] == drop_worst(SPACE, record["history"][0]["scores"], 1)
    assert all(len(ops) == 1 for ops in record["survivors"])
    for global_step, archs in drawn:
        allowed = [p["survivors"] for p in record["history"] if p["step"] <= global_step]
        for arch in archs:
            for index, choice in enumerate(arch.layers):
                assert not allowed or set(choice.paths) <= set(allowed[-1][index]), (global_step, str(arch))
    run = load_run(tmp_path / "run", device="cpu")
    assert [list(spec.ops) for spec in run.search_space.layers] == record["survivors"]
    assert run.space == SPACE  # every op's weights stay evaluable
    result, _ = search_supernet(
        tmp_path / "run", "random", SearchConfig(budget=1, population=2), progress=False, device="cpu"
    )
    assert [list(c.paths) for c in result.evaluated[0].arch.layers] == record["survivors"]


def test_resume_keeps_the_shrunk_state(tmp_path, digits_96):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    train_supernet(_config(), whole, progress=False, dataset=digits_96)
    train_supernet(_config(), cut, progress=False, dataset=digits_96, stop_after_steps=3)  # after the point
    assert load_checkpoint(cut / CHECKPOINT_FILE)["shrinking"]["history"][0]["step"] == 2
    train_supernet(None, cut, resume=True, progress=False, dataset=digits_96)
    a, b = load_checkpoint(whole / CHECKPOINT_FILE), load_checkpoint(cut / CHECKPOINT_FILE)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["shrinking"] == b["shrinking"]
    assert (whole / SHRINK_FILE).read_text() == (cut / SHRINK_FILE).read_text()


def test_shrinking_that_would_leave_fewer_than_m_ops_is_refused(tmp_path, digits_96):
    with pytest.raises(MixPathError, match="fewer than m=2"):
        train_supernet(_config(strategy="mixpath", m=2, shrink_at=(0.3, 0.6)), tmp_path / "x", dataset=digits_96)
    with pytest.raises(MixPathError, match="shrink_at"):
        _config(shrink_at=(0.5, 0.2))
