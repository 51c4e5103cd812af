"""Fuzz: run files that load but are wrong inside (config.json, checkpoint.pt, search state, front, ground
truth, a retraining's settings, evaluation-cache lines) and crafted NAS-Bench-101 TFRecord files are refused in
one line, with no traceback and no file changed. Every case runs in the default test run; ``-m fuzz`` runs the
fuzz suite alone."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import fuzzing
import pytest
import torch

from mixpath.benchmarks_nas.tfrecord import read_nasbench101
from mixpath.evaluation.cache import EvalCache
from mixpath.ranking.groundtruth import COLUMNS

ARCH = fuzzing.ARCH
RETRAIN = ["--epochs", "1", "--batch-size", "32", "--train-subset", "64", "--seed", "0"]
SEARCH = ["--budget", "4", "--population", "2", "--calib-size", "64", "--device", "cpu"]
COMMANDS = {
    "resume": ["train", "{run}", "--resume"],
    "evaluate": ["evaluate", "{run}", "--arch", ARCH, "--calib-size", "64"],
    "search": ["search", "{run}", "--algo", "evolution", *SEARCH],
    "export": ["export", "{run}", "--out", "{new}"],
    "retrain": ["retrain", "{run}", *RETRAIN, "--out", "{new}"],
}


@pytest.fixture(scope="module")
def pristine(fuzz_pristine) -> Path:
    return fuzz_pristine


@pytest.fixture(scope="module")
def workspace(pristine, tmp_path_factory) -> Path:
    return Path(shutil.copytree(pristine, tmp_path_factory.mktemp("fuzz-files-work") / "ws"))


def _places(root: Path) -> dict[str, Path]:
    return {"run": root / "run", "new": root / "new", "gt": root / "gt.csv", "retrained": root / "retrained"}


def _bad_file(relative: str, mutation: fuzzing.Mutation) -> Callable[[Path], None]:
    """Writes the bad version of the workspace's file ``relative``, made by ``mutation`` from its content."""

    def write(root: Path) -> None:
        path = root / relative
        if path.suffix == ".pt":
            good: object = torch.load(path, weights_only=True)
        elif path.suffix == ".json":
            good = json.loads(path.read_text())
        else:
            good = path.read_text()
        bad = mutation(good)
        if isinstance(bad, tuple) and bad[0] == "torn":
            data = path.read_bytes()
            path.write_bytes(data[: int(len(data) * bad[1])])
        elif isinstance(bad, str):
            path.write_text(bad, encoding="utf-8", errors="surrogateescape")
        elif isinstance(bad, bytes):
            path.write_bytes(bad)
        else:
            torch.save(bad, path)

    return write


ALGORITHM_STATE = {"random": ["rng"], "nsga2": ["rng", "n_iter", "X", "F", "G", "rank", "crowding"]}
"""The searchers' own entries of the saved search state."""


def _cases() -> list[tuple[str, tuple[Callable[[Path], None], list[str]]]]:
    """Every (bad file, command reading it) pair, named."""
    cases = []
    for name, mutation in fuzzing.config_variants():
        for command in ("resume", "evaluate", "search", "retrain"):
            cases.append((f"{name} | {command}", (_bad_file("run/config.json", mutation), COMMANDS[command])))
    for name, mutation in fuzzing.checkpoint_variants():
        training_state = any(part in name for part in ("optimizer", "metrics", "partial", "epoch", "step"))
        for command in ("resume",) if training_state else ("resume", "evaluate"):  # evaluate reads the weights
            cases.append((f"{name} | {command}", (_bad_file("run/checkpoint.pt", mutation), COMMANDS[command])))
    for algo, keys in ALGORITHM_STATE.items():
        args = ["search", "{run}", "--algo", algo, "--resume", "--budget", "6", "--calib-size", "64"]
        for name, mutation in fuzzing.search_state_variants(keys):
            cases.append((f"{algo} {name}", (_bad_file(f"run/search-{algo}/search_state.json", mutation), args)))
    for name, mutation in fuzzing.front_variants():
        for command in ("export", "retrain"):
            args = [*COMMANDS[command], "--algo", "random"]
            cases.append((f"{name} | {command}", (_bad_file("run/search-random/front.json", mutation), args)))
    header = ",".join(COLUMNS)
    lines = [f"{arch},50.0,51.0,1.0,0.1,1.0,0" for arch in fuzzing.GROUND_TRUTH_ARCHS]
    rank = ["rank", "{run}", "--ground-truth", "{gt}", "--calib-size", "64", "--resamples", "10"]
    for name, text in fuzzing.ground_truth_variants(header, lines):
        cases.append((name, (_bad_file("gt.csv", fuzzing.fixed(text)), rank)))
    retrain = ["retrain", "--space", "tiny", "--data", "digits", "--arch", ARCH, *RETRAIN, "--out", "{retrained}"]
    for name, file, mutation in fuzzing.settings_variants():
        cases.append((name, (_bad_file(f"retrained/{file}", mutation), retrain)))
    return cases


def _case(case, workspace: Path, pristine: Path) -> None:
    """Make the workspace hold the bad file, run the command and check the refusal; then put the workspace
    back as it was."""
    write, args = case
    written = fuzzing.snapshot(workspace)
    write(workspace)
    try:
        found, outcome = fuzzing.check(fuzzing.fill(args, _places(workspace)), workspace, pristine)
    finally:  # the bad file back to the good one
        fuzzing.restore(workspace, pristine, fuzzing.changes(written, fuzzing.snapshot(workspace)))
    assert not found, fuzzing.describe(found, outcome)


EVERY = fuzzing.params(_cases())


@pytest.mark.fuzz
@pytest.mark.parametrize("case", EVERY)
def test_fuzz_run_file(case, workspace, pristine):
    _case(case, workspace, pristine)


# --- library-level inputs: evaluation-cache lines and TFRecord files ----------------------------------------

CACHE_LINES = fuzzing.eval_cache_lines("key", ARCH)
EVERY_CACHE = fuzzing.params(CACHE_LINES)


def _cache_line(text: str, tmp_path: Path) -> None:
    """An unusable cache line is skipped (the architecture is scored again), never a traceback nor a score."""
    path = tmp_path / "eval_cache.jsonl"
    path.write_text(text + "\n")
    before = path.read_bytes()
    found = []
    try:
        if EvalCache(path, "key").get(ARCH) is not None:
            found.append("accepted invalid")
    except Exception as err:  # noqa: BLE001 - a MixPathError would be wrong too: the line is to be skipped
        found.append("tracebacks" if not isinstance(err, fuzzing.MixPathError) else "other refusals")
    if path.read_bytes() != before:
        found.append("files changed")
    fuzzing.record(found)
    assert not found, found


@pytest.mark.fuzz
@pytest.mark.parametrize("text", EVERY_CACHE)
def test_fuzz_cache_line(text, tmp_path):
    _cache_line(text, tmp_path)


TFRECORDS = [(name, (data, verify)) for name, data, verify in fuzzing.tfrecord_variants()]
EVERY_TF = fuzzing.params(TFRECORDS)


def _tfrecord(case, tmp_path: Path, through_cli: bool) -> None:
    data, verify = case
    path = tmp_path / "nasbench.tfrecord"
    path.write_bytes(data)
    if through_cli and verify:
        args = ["search", "--benchmark", "nb101", "--benchmark-file", str(path), "--out", str(tmp_path / "out")]
        found, outcome = fuzzing.check(args, tmp_path)
        assert not found, fuzzing.describe(found, outcome)
        return
    found = fuzzing.expect_refusal(lambda: list(read_nasbench101(path, verify=verify)))
    if path.read_bytes() != data:
        found.append("files changed")
    fuzzing.record(found)
    assert not found, found


@pytest.mark.fuzz
@pytest.mark.parametrize("case", EVERY_TF)
def test_fuzz_tfrecord(case, tmp_path):
    _tfrecord(case, tmp_path, through_cli=False)


@pytest.mark.fuzz
@pytest.mark.parametrize("case", EVERY_TF[::4])
def test_fuzz_tfrecord_through_the_command_line(case, tmp_path):
    _tfrecord(case, tmp_path, through_cli=True)
