"""One process per run folder: the lock every writing command holds, its race, and a killed holder's lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mixpath.cli import run
from mixpath.errors import MixPathError
from mixpath.ranking import build_ground_truth
from mixpath.ranking.groundtruth import COLUMNS
from mixpath.ranking.rank import rank_run
from mixpath.reporting import run_report, write_html_report
from mixpath.retraining import retrain_architecture
from mixpath.runlock import LOCK_FILE, file_lock, run_lock
from mixpath.search import SearchConfig
from mixpath.training import Recipe, TrainConfig, train_supernet
from mixpath.workflow import evaluate_architecture, export_architecture, search_supernet

HOLDER = """
import sys, time
from mixpath.runlock import run_lock
with run_lock(sys.argv[1], sys.argv[2]):
    print("locked", flush=True)
    time.sleep(600)
"""


def _hold(folder: Path, name: str = LOCK_FILE) -> subprocess.Popen:
    """Another process holding the lock of ``folder`` until it is killed."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), name], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


@pytest.fixture
def holder(tmp_path):
    process = _hold(tmp_path / "run")
    yield process
    process.kill()
    process.wait()


def _in_use(folder: Path, holder: subprocess.Popen) -> str:
    """The one line a command prints when ``holder`` holds the lock of ``folder``."""
    return (
        f"error: {folder} is in use by another mixpath process (pid {holder.pid}); wait for it to end, or use "
        "another folder"
    )


def _mixpath(capsys, args: list[str]) -> tuple[int, list[str]]:
    """``mixpath ARGS`` in this process: its exit status and its error lines."""
    status = run(args, fast_runtime=False)
    return status, [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]


def _contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_second_process_gets_one_error_line_and_exit_2(tmp_path, holder, capsys):
    folder = tmp_path / "run"
    status, errors = _mixpath(capsys, ["train", str(folder), "--space", "tiny", "--data", "digits"])
    assert status == 2 and errors == [_in_use(folder, holder)]
    assert sorted(p.name for p in folder.iterdir()) == [LOCK_FILE]  # the refused command wrote nothing


ARCH = "e3:k3-e3:k3-e3:k3"
WRITERS = {
    "evaluate": (f"evaluate RUN --arch {ARCH} --calib-size 64 --device cpu", "RUN/eval_cache.jsonl"),
    "export": (f"export RUN --arch {ARCH} --calibrate none --out OUT --device cpu", "OUT/model.pt"),
    "rank": (
        "rank RUN --ground-truth GT --calibrate none --resamples 10 --device cpu",
        "RUN/ranking/ranking_none.json",
    ),
    "report": ("report RUN --images 16 --archs 1 --calibrate none --out OUT --device cpu", "OUT/report.json"),
    "report-html": ("report RUN --html", "RUN/report.html"),
}
"""The commands that read a run and write files but train nothing: a small command line of each, and a file
it writes. OUT is outside the run folder; GT is a ground-truth CSV of three architectures."""


def _writer(name: str, run_dir: Path) -> tuple[list[str], Path]:
    """``WRITERS[name]`` on ``run_dir``, with OUT and GT beside it (GT written)."""
    places = {"RUN": run_dir, "OUT": run_dir.parent / "out", "GT": run_dir.parent / "gt.csv"}
    archs = (ARCH, "e6:k5-e3:k7-e6:k3", "e6:k9-e6:k9-e6:k9")
    rows = [f"{arch},{50 + i},{51 + i},{1 + i},{0.1 * (i + 1)},1.0,0" for i, arch in enumerate(archs)]
    places["GT"].write_text("\n".join([",".join(COLUMNS), *rows]) + "\n")
    line, written = WRITERS[name]
    for word, path in places.items():
        line, written = line.replace(word, str(path)), written.replace(word, str(path))
    return line.split(), Path(written)


@pytest.mark.parametrize("name", WRITERS)
def test_every_command_that_writes_into_a_run_refuses_a_locked_one_and_runs_once_it_is_free(run_dir, capsys, name):
    args, written = _writer(name, run_dir)
    holder = _hold(run_dir)
    try:
        before = _contents(run_dir)
        status, errors = _mixpath(capsys, args)
        assert status == 2 and errors == [_in_use(run_dir, holder)]
        assert _contents(run_dir) == before and not (run_dir.parent / "out").exists()  # it wrote nothing
    finally:
        holder.kill()
        holder.wait()
    assert _mixpath(capsys, args) == (0, [])
    assert written.is_file() and not (run_dir / LOCK_FILE).exists()


@pytest.mark.parametrize("name", ["export", "report"])
def test_export_and_report_lock_the_folder_they_write_outside_the_run(run_dir, capsys, name):
    args, _ = _writer(name, run_dir)
    out = run_dir.parent / "out"
    holder = _hold(out)
    try:
        before = _contents(run_dir)
        status, errors = _mixpath(capsys, args)
        assert status == 2 and errors == [_in_use(out, holder)]
        assert _contents(run_dir) == before and sorted(p.name for p in out.iterdir()) == [LOCK_FILE]
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize(
    "call",
    [
        lambda run_dir, tiny, digits: train_supernet(TrainConfig(space="tiny", data="digits"), run_dir, dataset=digits),
        lambda run_dir, tiny, digits: search_supernet(run_dir, "random", SearchConfig(budget=4, population=2)),
        lambda run_dir, tiny, digits: retrain_architecture(
            tiny, digits, tiny.parse("e3:k3-e3:k3-e3:k3", 1), Recipe(epochs=1), run_dir
        ),
        lambda run_dir, tiny, digits: evaluate_architecture(run_dir, ARCH),
        lambda run_dir, tiny, digits: export_architecture(run_dir, ARCH, run_dir.parent / "export"),
        lambda run_dir, tiny, digits: rank_run(run_dir, run_dir.parent / "gt.csv"),
        lambda run_dir, tiny, digits: run_report(run_dir),
        lambda run_dir, tiny, digits: write_html_report(run_dir),
    ],
    ids=["train", "search", "retrain", "evaluate", "export", "rank", "report", "report-html"],
)
def test_the_library_functions_hold_the_lock_too(tmp_path, holder, tiny, digits_small, call):
    with pytest.raises(MixPathError, match=f"in use by another mixpath process \\(pid {holder.pid}\\)"):
        call(tmp_path / "run", tiny, digits_small)


def test_ground_truth_files_are_locked_one_by_one(tmp_path, tiny, digits_small):
    holder = _hold(tmp_path, ".a.csv.lock")
    try:
        arch = [tiny.parse("e3:k3-e3:k3-e3:k3", 1)]
        with pytest.raises(MixPathError, match="in use"):
            build_ground_truth(tiny, digits_small, arch, Recipe(epochs=1), tmp_path / "a.csv")
        with file_lock(tmp_path / "b.csv"):  # another file of the same folder is free
            pass
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path, caplog):
    folder = tmp_path / "run"
    holder = _hold(folder)
    with pytest.raises(MixPathError, match="in use"):
        with run_lock(folder):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (folder / LOCK_FILE).read_text().strip() == str(holder.pid)  # left behind, but no longer held
    with caplog.at_level("INFO", logger="mixpath.runlock"), run_lock(folder):
        assert (folder / LOCK_FILE).read_text().strip() == str(os.getpid())
    assert f"taking over the lock of process {holder.pid}" in caplog.text


def test_the_lock_is_reentrant_and_a_failed_command_leaves_no_folder(tmp_path):
    folder = tmp_path / "new" / "run"
    with run_lock(folder):
        with run_lock(folder):  # the pipeline holds it while the training it calls takes it again
            assert (folder / LOCK_FILE).is_file()
        assert (folder / LOCK_FILE).is_file()
    assert not folder.exists()  # created by the lock, nothing written: removed
    folder.mkdir()
    (folder / "kept.txt").write_text("x")
    with run_lock(folder):
        pass
    assert sorted(p.name for p in folder.iterdir()) == ["kept.txt"]


RACER = """
import contextlib, io, json, logging, os, sys, time
import torch
torch.set_num_threads(1)
from mixpath.cli import run
logging.basicConfig(level=logging.WARNING)
base, me, seed, trials = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
for trial in range(trials):
    open(os.path.join(base, f"ready-{me}-{trial}"), "w").close()
    while not os.path.exists(os.path.join(base, f"go-{trial}")):
        time.sleep(0.0002)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = run(["train", os.path.join(base, f"race{trial}"), "--space", "tiny", "--data", "digits",
                      "--train-subset", "64", "--batch-size", "32", "--epochs", "1", "--seed", seed, "--device", "cpu"],
                     fast_runtime=False)
    done = os.path.join(base, f"done-{me}-{trial}")
    with open(done + ".tmp", "w") as f:
        json.dump({"status": status, "stderr": err.getvalue()}, f)
    os.replace(done + ".tmp", done)  # whole when it appears
"""
RACES = 20


def _wait_for(*paths: Path, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(path.exists() for path in paths):
        assert time.monotonic() < deadline, f"waited {timeout} s for {paths}"
        time.sleep(0.001)


def test_two_trainings_started_at_the_same_instant_on_one_new_folder_give_exactly_one_run(tmp_path):
    """The race of the issue: two ``mixpath train`` released together on one new folder. Without the lock both
    trained (8 in 10 tries) and the folder could end with one's config and the other's weights."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    seeds = {"a": "1", "b": "2"}
    racers = [
        subprocess.Popen([sys.executable, "-c", RACER, str(tmp_path), me, seed, str(RACES)], env=env)
        for me, seed in seeds.items()
    ]
    try:
        outcomes = []
        for trial in range(RACES):
            _wait_for(*(tmp_path / f"ready-{me}-{trial}" for me in seeds))
            (tmp_path / f"go-{trial}").touch()  # both are polling for it every 0.2 ms
            done = [tmp_path / f"done-{me}-{trial}" for me in seeds]
            _wait_for(*done)
            outcomes.append({me: json.loads(path.read_text()) for me, path in zip(seeds, done, strict=True)})
    finally:
        for racer in racers:
            racer.kill()
            racer.wait()
    one_run = 0
    for trial, outcome in enumerate(outcomes):
        statuses = sorted(result["status"] for result in outcome.values())
        winner = next((me for me, result in outcome.items() if result["status"] == 0), None)
        loser = next((result for result in outcome.values() if result["status"] == 2), None)
        if statuses != [0, 2] or winner is None or loser is None:
            continue
        errors = [line for line in loser["stderr"].splitlines() if line.startswith("error:")]
        config = json.loads((tmp_path / f"race{trial}" / "config.json").read_text())
        if len(errors) == 1 and "Traceback" not in loser["stderr"] and config["seed"] == int(seeds[winner]):
            one_run += 1
    print(f"concurrent-start race: exactly one run in {one_run}/{RACES} tries")
    assert one_run == RACES, outcomes


@pytest.fixture(scope="module")
def digits_small():
    from mixpath.data import load_dataset

    return load_dataset("digits", train_subset=64)
