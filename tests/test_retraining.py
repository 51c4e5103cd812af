"""Retraining from scratch: per-epoch rows that leave the weights alone, checked recipes, folders that say
what they hold (and refuse anything else), resuming, and a whole search front in one resumable call."""

import csv
import json
import math
import os
import subprocess
import sys

import pytest
import torch

from mixpath.data import load_dataset
from mixpath.errors import MixPathError
from mixpath.export import load_exported
from mixpath.retraining import (
    RetrainEntry,
    format_table,
    front_entries,
    retrain_architecture,
    retrain_architectures,
    retrain_front,
)
from mixpath.supernet import build_standalone
from mixpath.training import Recipe, TrainConfig
from mixpath.training.standalone import init_seed, train_standalone

RECIPE = Recipe(epochs=2, batch_size=32, lr=0.1)
ARCHS = ("e6:k3+k5-e3:k3-e6:k5", "e3:k3-e3:k5-e6:k3")
RESULT_KEYS = {
    "arch",
    "space",
    "data",
    "seed",
    "recipe",
    "epochs",
    "val_acc",
    "test_acc",
    "flops",
    "params",
    "train_seconds",
}
FRONT_TABLE_COLUMNS = ["name", "arch", "flops", "params", "supernet_score", "val_acc", "test_acc", "train_seconds"]
"""The columns of a retrained front's table, in order: its rows' keys and the printed table's header."""


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", train_subset=320)


def _read_csv(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def _untimed_rows(path):
    return [{key: value for key, value in row.items() if key != "seconds"} for row in _read_csv(path)]


def _weights(folder):
    return torch.load(folder / "model.pt", weights_only=True)["state_dict"]


def test_per_epoch_rows_leave_the_weights_bit_identical(tiny, digits):
    arch = tiny.parse(ARCHS[0], 4)
    init_seed(0)
    plain = build_standalone(tiny, arch)
    quiet = train_standalone(plain, digits, RECIPE, seed=0, progress=False)
    init_seed(0)
    watched = build_standalone(tiny, arch)
    seen = []
    loud = train_standalone(
        watched, digits, RECIPE, seed=0, progress=False, validate_epochs=True, on_epoch=lambda h: seen.append(list(h))
    )
    for key, value in plain.state_dict().items():
        assert torch.equal(value, watched.state_dict()[key]), key
    assert loud["val_acc"] == quiet["val_acc"] and loud["test_acc"] == quiet["test_acc"]
    assert [len(history) for history in seen] == [1, 2]
    assert [row["epoch"] for row in loud["history"]] == [1, 2]
    assert set(loud["history"][0]) == {"epoch", "train_loss", "train_acc", "val_acc", "lr", "seconds"}
    assert "val_acc" not in quiet["history"][0]  # off by default: ground truth pays for no extra pass
    assert loud["history"][-1]["val_acc"] == loud["val_acc"]  # the last epoch's validation is the result's
    assert loud["history"][0]["lr"] > loud["history"][1]["lr"] > 0  # cosine, read at each epoch's end


def test_a_checkpoint_of_another_model_is_a_one_line_error(tmp_path, tiny, digits):
    ckpt = tmp_path / "checkpoint.pt"
    first = build_standalone(tiny, tiny.parse(ARCHS[0], 4))
    train_standalone(first, digits, RECIPE, progress=False, checkpoint_path=ckpt, stop_after_epochs=1)
    with pytest.raises(MixPathError, match="holds the weights of another model") as caught:
        train_standalone(build_standalone(tiny, tiny.parse(ARCHS[1], 4)), digits, RECIPE, checkpoint_path=ckpt)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"epochs": 0}, "epochs=0 must be a whole number >= 1"),
        ({"epochs": -1}, "epochs=-1 must be a whole number >= 1"),
        ({"batch_size": 0}, "batch_size=0 must be a whole number >= 1"),
        ({"batch_size": -1}, "batch_size=-1 must be a whole number >= 1"),
        ({"lr": 0.0}, "lr=0.0 must be a finite number > 0"),
        ({"lr": math.nan}, "lr=nan must be a finite number > 0"),
        ({"momentum": 1.0}, "momentum=1.0 must be a number in [0, 1)"),
        ({"weight_decay": -0.1}, "weight_decay=-0.1 must be a finite number >= 0"),
        ({"grad_clip": math.inf}, "grad_clip=inf must be a finite number >= 0"),
        ({"label_smoothing": 1.0}, "label_smoothing=1.0 must be a number in [0, 1)"),
    ],
)
def test_a_bad_recipe_is_refused_in_one_line(fields, message):
    with pytest.raises(MixPathError) as caught:
        Recipe(**fields)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_retrain_folder_holds_settings_metrics_curves_model_and_result(tmp_path, tiny, digits):
    arch = tiny.parse(ARCHS[0], 4)
    result = retrain_architecture(tiny, digits, arch, RECIPE, tmp_path, progress=False, labels={"role": "best"})
    assert set(result) == RESULT_KEYS | {"role"}
    assert result["arch"] == ARCHS[0] and result["data"] == "digits" and result["epochs"] == 2
    assert result["recipe"]["batch_size"] == 32 and result["flops"] > 0 and result["params"] > 0
    assert json.loads((tmp_path / "result.json").read_text()) == result
    settings = json.loads((tmp_path / "settings.json").read_text())
    assert settings["arch"] == ARCHS[0] and settings["seed"] == 0 and settings["recipe"]["epochs"] == 2
    rows = _read_csv(tmp_path / "metrics.csv")
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert list(rows[0]) == ["epoch", "train_loss", "train_acc", "val_acc", "lr", "seconds"]
    assert float(rows[-1]["val_acc"]) == result["val_acc"]
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")
    model, space, loaded = load_exported(tmp_path)
    assert space is tiny and loaded == arch
    assert model(digits.val_x[:4]).shape == (4, 10)


def test_a_folder_holding_another_retraining_is_refused_in_one_line(tmp_path, tiny, digits):
    one = Recipe(epochs=1, batch_size=32, lr=0.1)
    done = tmp_path / "done"
    retrain_architecture(tiny, digits, tiny.parse(ARCHS[0], 4), one, done, seed=0, progress=False)
    before = (done / "result.json").read_text()
    with pytest.raises(MixPathError, match=r"holds another retraining \(seed: 0 there, 5 asked\)") as caught:
        retrain_architecture(tiny, digits, tiny.parse(ARCHS[0], 4), one, done, seed=5, progress=False)
    assert "\n" not in str(caught.value)
    with pytest.raises(MixPathError, match=r"holds another retraining \(arch: ") as caught:
        retrain_architecture(tiny, digits, tiny.parse(ARCHS[1], 4), one, done, progress=False)
    assert "\n" not in str(caught.value)
    with pytest.raises(MixPathError, match=r"recipe.epochs: 1 there, 2 asked"):
        retrain_architecture(tiny, digits, tiny.parse(ARCHS[0], 4), RECIPE, done, progress=False)
    with pytest.raises(MixPathError) as caught:  # two settings differ: both are named, for callers too
        retrain_architecture(tiny, digits, tiny.parse(ARCHS[0], 4), Recipe(epochs=2, batch_size=16), done)
    assert caught.value.folder == done
    assert (
        caught.value.changes == "recipe.batch_size: 32 there, 16 asked; recipe.epochs: 1 there, 2 asked; "
        "recipe.lr: 0.1 there, 0.05 asked"
    )
    assert (done / "result.json").read_text() == before  # nothing relabelled or overwritten
    with pytest.raises(MixPathError, match="exceeds the 320 training images"):
        retrain_architecture(tiny, digits, tiny.parse(ARCHS[0], 4), Recipe(batch_size=999), tmp_path / "new")
    # nothing was trained there, so the corrected call may take the folder over
    assert retrain_architecture(tiny, digits, tiny.parse(ARCHS[0], 4), one, tmp_path / "new", progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "model.pt").write_bytes(b"someone else's")
    with pytest.raises(MixPathError, match="not an empty folder and holds no settings.json"):
        retrain_architecture(tiny, digits, tiny.parse(ARCHS[0], 4), one, tmp_path / "other", progress=False)


def test_a_killed_retraining_resumes_to_the_same_result(tmp_path, tiny, digits):
    arch = tiny.parse(ARCHS[0], 4)
    whole = retrain_architecture(tiny, digits, arch, RECIPE, tmp_path / "whole", progress=False)
    cut = tmp_path / "cut"
    assert retrain_architecture(tiny, digits, arch, RECIPE, cut, progress=False, stop_after_epochs=1) is None
    assert len(_read_csv(cut / "metrics.csv")) == 1 and not (cut / "result.json").exists()
    resumed = retrain_architecture(tiny, digits, arch, RECIPE, cut, progress=False)
    same = ("val_acc", "test_acc", "flops", "params", "arch", "seed")
    assert {k: resumed[k] for k in same} == {k: whole[k] for k in same}
    for key, value in _weights(tmp_path / "whole").items():
        assert torch.equal(value, _weights(cut)[key]), key
    assert _untimed_rows(cut / "metrics.csv") == _untimed_rows(tmp_path / "whole" / "metrics.csv")


def _fake_run(run):
    """A run folder as train + search leave it, without training: config.json and an NSGA-II front."""
    run.mkdir()
    (run / "config.json").write_text(json.dumps(TrainConfig(space="tiny", data="digits", m=4).to_json()))
    front = [
        {"arch": arch, "generation": 1, "feasible": True, "metrics": {"accuracy": acc, "flops": 0.1, "params": 0.01}}
        for arch, acc in zip(ARCHS, (41.5, 37.25), strict=True)
    ]
    (run / "search-nsga2").mkdir()
    (run / "search-nsga2" / "front.json").write_text(json.dumps(front))


def test_from_front_retrains_every_architecture_once_and_resumes(tmp_path, tiny, digits, monkeypatch):
    run = tmp_path / "run"
    _fake_run(run)
    one = Recipe(epochs=2, batch_size=32, lr=0.1)
    _, entries = front_entries(run)
    assert [entry.supernet_score for entry in entries] == [41.5, 37.25]
    assert entries[0].name.startswith("00-") and entries[1].name.startswith("01-")
    # a killed command: the second architecture stopped after its first epoch
    partial = retrain_architecture(
        tiny, digits, entries[1].arch, one, run / "retrain" / entries[1].name, progress=False, stop_after_epochs=1
    )
    assert partial is None
    root, rows = retrain_front(run, one, train_subset=320, progress=False)
    assert root == run / "retrain"
    assert [row["arch"] for row in rows] == list(ARCHS)
    assert list(rows[0]) == FRONT_TABLE_COLUMNS
    assert rows[1]["supernet_score"] == 37.25
    assert json.loads((root / "table.json").read_text()) == rows
    assert [row["arch"] for row in _read_csv(root / "table.csv")] == list(ARCHS)
    lines = format_table(rows)
    end = lines[0].index("val_acc") + len("val_acc")  # numbers right-aligned under their header
    assert [line[:end].split()[-1] for line in lines[1:]] == [f"{row['val_acc']:.2f}" for row in rows]

    def no_training(*args, **kwargs):
        raise AssertionError("a finished folder was trained again")

    monkeypatch.setattr("mixpath.retraining.train_standalone", no_training)
    _, again = retrain_front(run, one, train_subset=320, progress=False)
    assert again == rows
    with pytest.raises(MixPathError, match="holds another retraining"):
        retrain_front(run, one, train_subset=320, seed=3, progress=False)


def test_from_front_splits_the_data_as_the_run_did(tmp_path, monkeypatch):
    run = tmp_path / "run"
    _fake_run(run)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "val_size": 77}))
    seen = {}

    def capture(space, dataset, entries, *args, **kwargs):
        seen["val"] = len(dataset.val)
        return []

    monkeypatch.setattr("mixpath.retraining.retrain_architectures", capture)
    retrain_front(run, Recipe(epochs=1), progress=False)
    assert seen["val"] == 77  # the run's validation size, not the loader's default tenth


def test_from_front_needs_exactly_one_search(tmp_path):
    run = tmp_path / "run"
    _fake_run(run)
    (run / "search-random").mkdir()
    (run / "search-random" / "front.json").write_text((run / "search-nsga2" / "front.json").read_text())
    with pytest.raises(MixPathError, match=r"several searches \(nsga2, random\); choose one with --algo"):
        front_entries(run)
    assert len(front_entries(run, "random")[1]) == 2
    with pytest.raises(MixPathError, match="no search front of evolution"):
        front_entries(run, "evolution")
    with pytest.raises(MixPathError, match="not a mixpath run folder"):
        front_entries(tmp_path / "nowhere")


def test_entries_with_one_folder_name_are_refused(tmp_path, tiny, digits):
    entries = [RetrainEntry("a", tiny.parse(arch, 4)) for arch in ARCHS]
    with pytest.raises(MixPathError, match="share the folder name 'a'"):
        retrain_architectures(tiny, digits, entries, RECIPE, tmp_path, progress=False)


def _mixpath(*args):
    code = "import sys; from mixpath.cli import main; sys.argv = ['mixpath'] + sys.argv[1:]; main()"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=600)


def test_cli_refuses_a_bad_recipe_in_one_line():
    bad = _mixpath("retrain", "--space", "tiny", "--data", "digits", "--arch", ARCHS[0], "--batch-size", "0")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert [line for line in bad.stderr.splitlines() if line.startswith("error:")] == [
        "error: batch_size=0 must be a whole number >= 1"
    ]


@pytest.mark.slow
def test_cli_retrains_a_front_and_prints_its_table(tmp_path):
    run = tmp_path / "run"
    _fake_run(run)
    args = ["retrain", "--from-front", str(run), "--epochs", "1", "--batch-size", "32", "--train-subset", "320"]
    done = _mixpath(*args)
    assert done.returncode == 0, done.stderr
    assert "epoch 1/1: train loss" in done.stderr  # per-epoch progress line
    table = done.stdout.splitlines()
    assert table[0].split() == FRONT_TABLE_COLUMNS
    assert len(table) == 4 and "table.csv" in table[-1]
