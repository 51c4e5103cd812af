"""The methods comparison's driver (experiments/compare_methods.py) carries out a protocol end to end, on a tiny one."""

from __future__ import annotations

import csv
import json
import statistics
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))

import compare_methods  # noqa: E402
import ranking  # noqa: E402

from mixpath.ranking import GroundTruthFile, GroundTruthRow  # noqa: E402

MAX_FLOPS = 0.4  # tiny: single-path archs 0.12-0.56 M multiply-adds, m=4 ones 0.18-1.03
YARDSTICK_EPOCHS = 3
TINY_PROTOCOL = """
[data]
dataset = "digits"
val_size = 0.6                     # 575 training images: 5 steps an epoch
split_seed = 0
[space]
name = "tiny"
seed = 0
[budget]
timing_images = 480                # fbnet holds out 20 %: 96 images, one architecture batch
threads = 1
yardstick_epochs = 3               # not TrainConfig's 30: the test's budget
[methods.mixpath]
train = { strategy = "mixpath", m = 4, bn_policy = "shadow" }
[methods.mixpath.search]           # searched as MoGA: the latency table's second user, at m=4
algo = "nsga2"
objectives = "accuracy,latency,params"
maximise = "params"
weights = "accuracy=1,latency=1,params=0.5"
[methods.bsnas]
train = { strategy = "spos", shrink_at = [0.25, 0.5, 0.75], held_out = 0.1 }
search = { algo = "evolution", objectives = "accuracy,flops" }
[methods.fbnet]
train = { strategy = "fbnet", latency_table = "latency_table.json" }
search = { algo = "fbnet", objectives = "accuracy,flops" }
[search]
budget = 6
population = 3
max_flops = {max_flops}
calibrate = "exact"
[latency_table]
file = "latency_table.json"
[retrain]
epochs = 1
lr = 0.05
batch_size = 96
seeds = [0, 1]
[shrink_ranking]
ground_truth_protocol = "tiny-ranking"
bootstrap = 200
""".replace("{max_flops}", str(MAX_FLOPS))

RANKING_PROTOCOL = """
name = "tiny-ranking"
[data]
dataset = "digits"
val_size = 0.1
split_seed = 0
[space]
name = "tiny"
m = 4
[ground_truth]
archs = 16
sample_seed = 0
seeds = [0, 1]
epochs_ladder = [1]
min_seed_tau = 0.0
"""


def write_protocol(tmp_path: Path, text: str = TINY_PROTOCOL) -> Path:
    path = tmp_path / "methods-tiny.toml"
    path.write_text(text)
    return path


def write_ground_truth(root: Path) -> list[str]:
    """A ranking study's results folder holding made-up accuracies of its single-path archs, both seeds."""
    folder = root / "results" / "tiny-ranking"
    folder.mkdir(parents=True)
    (folder / "protocol.toml").write_text(RANKING_PROTOCOL)
    study = ranking.Study(folder / "protocol.toml", root)
    singles = [arch for arch in study.archs() if ranking.single_path(arch)]
    out = GroundTruthFile(study.gt_dir(1) / "worker0of1.csv")
    for i, arch in enumerate(singles):
        for seed in (0, 1):
            out.append(GroundTruthRow(arch, 90.0 + i, 90.0 + i + seed / 2, 0.2, 0.01, 1.0, seed))
    return singles


def run(protocol: Path, root: Path, *args: str) -> None:
    compare_methods.main([*args, "--protocol", str(protocol), "--root", str(root)])


def one_line_error(capsys, protocol: Path, root: Path, *args: str) -> str:
    with pytest.raises(SystemExit) as stopped:
        run(protocol, root, *args)
    message = stopped.value.code if isinstance(stopped.value.code, str) else capsys.readouterr().err
    assert message.strip() and "\n" not in message.strip() and "Traceback" not in message
    return message


def test_epochs_give_every_method_the_yardsticks_wall_clock():
    yardstick = 30 * 0.01 * 1000  # 30 epochs of 1,000 images at 10 ms each
    assert compare_methods.method_epochs(yardstick, 0.01, 1000) == 30
    assert compare_methods.method_epochs(yardstick, 0.02, 900) == 17  # twice as slow on 90 %: 16.7 epochs
    assert compare_methods.method_epochs(yardstick, 0.08, 1000) == 4  # 3.75, rounded
    assert compare_methods.method_epochs(yardstick, 10.0, 1000) == 1  # never fewer than one


def test_bad_input_is_a_one_line_error(tmp_path, capsys):
    protocol = write_protocol(tmp_path)
    assert "invalid choice" in one_line_error(capsys, protocol, tmp_path, "sing")
    assert "0 <= i < n" in one_line_error(capsys, protocol, tmp_path, "retrain", "--worker", "3/2")
    assert "not i/n" in one_line_error(capsys, protocol, tmp_path, "retrain", "--worker", "1/2/3")
    assert "timing stage first" in one_line_error(capsys, protocol, tmp_path, "train")
    lacking = write_protocol(tmp_path, TINY_PROTOCOL.replace("population = 3\n", ""))
    assert "[search] population" in one_line_error(capsys, lacking, tmp_path, "table")
    unknown = write_protocol(tmp_path, TINY_PROTOCOL.replace('name = "tiny"', 'name = "nope"'))
    assert "nope" in one_line_error(capsys, unknown, tmp_path, "table")
    no_file = tmp_path / "missing.toml"
    assert "cannot read the protocol" in one_line_error(capsys, no_file, tmp_path, "table")


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_comparison_end_to_end_on_a_tiny_protocol(tmp_path):
    protocol = write_protocol(tmp_path)
    singles = write_ground_truth(tmp_path)
    for stage in ("latency", "timing", "train", "search", "retrain", "shrink-ranking", "table"):
        run(protocol, tmp_path, stage)
    results, runs = tmp_path / "results" / "methods-tiny", tmp_path / "runs" / "methods-tiny"

    timing = json.loads((results / "timing.json").read_text())
    methods = timing["methods"]
    yardstick = YARDSTICK_EPOCHS * methods["mixpath"]["seconds_per_image"] * timing["training_images"]["mixpath"]
    assert timing["yardstick"]["seconds"] == pytest.approx(yardstick, abs=0.1)
    assert timing["epochs"]["mixpath"] == YARDSTICK_EPOCHS
    for name, measured in methods.items():
        assert measured["seconds_per_image"] == pytest.approx(measured["seconds"] / measured["images"])
        assert len(measured["load_average_before"]) == 3 and measured["cpu"] and measured["torch"]
        images = timing["training_images"][name]
        assert timing["epochs"][name] == compare_methods.method_epochs(yardstick, measured["seconds_per_image"], images)
    assert methods["fbnet"]["images"] == 384  # 480 less the held-out share
    assert methods["bsnas"]["images"] == 480  # timed without its shrink points, so nothing is held out
    assert methods["mixpath"]["images"] == 480

    rows = {row["method"]: row for row in read_csv(results / "methods.csv")}
    assert set(rows) == {"mixpath", "bsnas", "fbnet"}
    for name, row in rows.items():
        assert int(row["supernet_epochs"]) == timing["epochs"][name]
        assert json.loads((runs / name / "config.json").read_text())["epochs"] == timing["epochs"][name]
        assert float(row["flops"]) <= MAX_FLOPS
        accuracies = [float(row[f"test_acc_seed{seed}"]) for seed in (0, 1)]
        assert float(row["test_acc_mean"]) == pytest.approx(statistics.mean(accuracies), abs=0.01)
        assert float(row["search_seconds"]) > 0 and float(row["supernet_seconds"]) > 0
        for seed in (0, 1):
            retrained = json.loads((results / "retrained" / f"{name}-seed{seed}.json").read_text())
            assert retrained["arch"] == row["arch"] and retrained["seed"] == seed and retrained["epochs"] == 1
    assert "TO FILL" not in (results / "methods.md").read_text()
    assert (results / "methods.png").is_file() and (results / "protocol.toml").is_file()
    table = results / "latency_table.json"
    assert json.loads(table.read_text())["m"] == 4  # the largest m of the methods that use it
    assert json.loads((runs / "fbnet" / "config.json").read_text())["latency_table"] == str(table)
    assert (runs / "mixpath" / "latency_table.json").read_text() == table.read_text()  # the search used it too
    searched = json.loads((runs / "mixpath" / "search-nsga2" / "history.json").read_text())["config"]
    assert searched["maximise"] == ["params"] and searched["weights"]["params"] == 0.5
    assert searched["constraints"] == {"flops": MAX_FLOPS}

    shrink = json.loads((results / "shrink_ranking.json").read_text())
    assert shrink["ground_truth"]["archs"] == len(singles) and "spos" not in shrink  # no spos in this protocol
    assert shrink["bsnas"]["archs"] == len(singles) and shrink["bsnas"]["kendall_tau"]["value"] is not None
    survivors = json.loads((runs / "bsnas" / "shrunk.json").read_text())["survivors"]
    assert json.loads((results / "supernets" / "bsnas-shrunk.json").read_text())["survivors"] == survivors
    assert (results / "supernets" / "fbnet-fbnet.json").read_text() == (runs / "fbnet" / "fbnet.json").read_text()
    for arch, dropped in shrink["bsnas"]["uses_dropped_ops"].items():
        assert arch in singles
        assert all(op.split(":")[1] not in survivors[int(op.split(":")[0])] for op in dropped)

    # everything done: `all` (with its two retraining processes) trains nothing and rewrites the outputs
    trained = [path for name in ("checkpoint.pt", "result.json", "history.json") for path in runs.rglob(name)]
    assert len(trained) >= 3 + 3 + 2 * 3  # supernets, searches, retrainings
    before = {path: path.stat().st_mtime_ns for path in trained}
    csv_text = (results / "methods.csv").read_text()
    run(protocol, tmp_path, "all")
    assert {path: path.stat().st_mtime_ns for path in trained} == before
    assert (results / "methods.csv").read_text() == csv_text

    # the committed results alone (no run folders, as in a fresh clone) give the same table and the same picks
    searched = {name: json.loads((results / "searches" / f"{name}.json").read_text()) for name in rows}
    picks = {name: record["pick"]["arch"] for name, record in searched.items()}
    assert picks == {name: row["arch"] for name, row in rows.items()}
    runs.rename(tmp_path / "runs-moved")
    run(protocol, tmp_path, "table")
    assert (results / "methods.csv").read_text() == csv_text
