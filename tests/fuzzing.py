"""The fuzz suite's machinery: generated bad inputs, one run of ``mixpath`` in this process, and the tally.

Every input here is invalid by construction (a value outside its option's range, a malformed architecture, a
run file with the wrong structure, a crafted TFRecord), so the one right answer is a refusal: exit status 2,
exactly one ``error:`` line, no traceback, no usage box, and every file that existed before unchanged. What
went wrong with each input is counted in ``TALLY`` under ``PROBLEMS``; ``conftest.py`` prints the counts at
the end of a run that included fuzz cases (``python3 -m pytest -m fuzz``, the figures in the README).

``tests/test_fuzz_cli.py`` feeds command lines, ``tests/test_fuzz_files.py`` run files and TFRecord files.
Each generator is deterministic: the same cases, in the same order, on every machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import random
import re
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tfrecord_writer import frame, varint

from mixpath.cli import run
from mixpath.errors import MixPathError
from mixpath.training.recipe import Recipe

PROBLEMS = ("tracebacks", "usage boxes", "accepted invalid", "files changed", "other refusals")
"""What can go wrong with one bad input: an exception escaped (a traceback for a user), Click's usage box, the
input was accepted (exit 0), a file that existed changed (or a new one appeared), or the refusal was not one
``error:`` line with exit status 2."""
TALLY: Counter[str] = Counter()
"""``inputs`` and one count per problem, over every fuzz case run in this pytest session."""


@dataclass
class Outcome:
    status: int | None
    stdout: str
    stderr: str
    exception: BaseException | None

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]


def invoke(args: Sequence[str]) -> Outcome:
    """``mixpath ARGS`` in this process, its output captured; an exception that escapes is kept, not raised."""
    out, err = io.StringIO(), io.StringIO()
    status: int | None = None
    exception: BaseException | None = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = run(list(args), fast_runtime=False)
        except SystemExit as stop:
            status = stop.code if isinstance(stop.code, int) else 1
        except Exception as caught:  # what a user would see as a traceback
            exception = caught
    return Outcome(status, out.getvalue(), err.getvalue(), exception)


def problems_of(outcome: Outcome, changed: Sequence[str]) -> list[str]:
    """The ``PROBLEMS`` one refused input shows (none when it was refused properly)."""
    found = []
    if outcome.exception is not None or "Traceback (most recent call last)" in outcome.stderr:
        found.append("tracebacks")
    if re.search(r"^Usage: |^Try '", outcome.stdout + outcome.stderr, re.M):
        found.append("usage boxes")
    if outcome.status == 0:
        found.append("accepted invalid")
    elif outcome.exception is None and (outcome.status != 2 or len(outcome.error_lines) != 1):
        found.append("other refusals")
    if changed:
        found.append("files changed")
    return found


def record(problems: Sequence[str]) -> None:
    TALLY["inputs"] += 1
    for problem in problems:
        TALLY[problem] += 1


def summary() -> str:
    """One line of counts for the README."""
    counts = ", ".join(f"{TALLY[name]} {name}" for name in PROBLEMS)
    return f"fuzz: {TALLY['inputs']} bad inputs; {counts}"


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, by relative path."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Files changed, removed or added between two snapshots."""
    return sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))


def check(args: Sequence[str], workspace: Path, pristine: Path | None = None) -> tuple[list[str], Outcome]:
    """Run one bad command line in ``workspace`` and return its problems (recorded in the tally). When it
    changed a file, the workspace is restored from ``pristine`` so that the next case starts clean."""
    before = snapshot(workspace)
    outcome = invoke(args)
    changed = changes(before, snapshot(workspace))
    if changed and pristine is not None:
        restore(workspace, pristine, changed)
    found = problems_of(outcome, changed)
    record(found)
    return found, outcome


def restore(workspace: Path, pristine: Path, names: Sequence[str]) -> None:
    """Put the files ``names`` (relative) of ``workspace`` back as ``pristine`` has them, or remove them, and
    remove the folders ``pristine`` does not have."""
    for name in names:
        source, target = pristine / name, workspace / name
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        else:
            target.unlink(missing_ok=True)
    for folder in sorted((p for p in workspace.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not (pristine / folder.relative_to(workspace)).is_dir():
            shutil.rmtree(folder, ignore_errors=True)


def describe(found: Sequence[str], outcome: Outcome, changed: str = "") -> str:
    detail = repr(outcome.exception) if outcome.exception is not None else outcome.stderr[-600:]
    return f"{', '.join(found)} (status {outcome.status}): {detail} {changed}"


def params(cases: Sequence[tuple[str, object]]) -> list:
    """``(id, case)`` pairs as pytest params."""
    import pytest

    return [pytest.param(case, id=name) for name, case in cases]


def build_workspace(root: Path) -> Path:
    """The files bad inputs must leave as they are: a tiny supernet trained one epoch on 64 digits (``run``)
    with a random and an nsga2 search, an export of it (``export``), a retraining (``retrained``), a
    ground-truth CSV of three architectures (``gt.csv``), a plain file (``file.txt``) and an empty folder."""
    from mixpath.data import load_dataset
    from mixpath.evaluation import CalibrationSettings
    from mixpath.io import write_json
    from mixpath.ranking.groundtruth import COLUMNS
    from mixpath.retraining import _settings as retraining_settings
    from mixpath.search import SearchConfig
    from mixpath.spaces import get_space
    from mixpath.training import TrainConfig, train_supernet
    from mixpath.workflow import export_architecture, search_supernet

    run = root / "run"
    train_supernet(TrainConfig(**TINY_RUN), run, progress=False, device="cpu")
    for algo in ("random", "nsga2"):
        config = SearchConfig(budget=4, population=2)
        search_supernet(run, algo, config, calibration=CalibrationSettings(size=64), progress=False, device="cpu")
    export_architecture(run, ARCH, root / "export", calibration=CalibrationSettings("none"), device="cpu")
    tiny = get_space("tiny")
    settings = retraining_settings(tiny, load_dataset("digits", train_subset=64), tiny.parse(ARCH, 4), RETRAINED, 0)
    write_json(root / "retrained" / "settings.json", settings)  # a finished retraining, as its files say
    write_json(root / "retrained" / "result.json", {"arch": ARCH, "space": "tiny", "val_acc": 50.0, "test_acc": 51.0})
    rows = [f"{arch},50.0,51.0,1.0,0.1,1.0,0" for arch in GROUND_TRUTH_ARCHS]
    (root / "gt.csv").write_text(",".join(COLUMNS) + "\n" + "\n".join(rows) + "\n")
    (root / "file.txt").write_text("not a run\n")
    (root / "empty").mkdir()
    return root


TINY_RUN = {"space": "tiny", "data": "digits", "train_subset": 64, "batch_size": 32, "epochs": 1}
"""The settings of the workspace's run."""
RETRAINED = Recipe(epochs=1, batch_size=32)
"""The recipe of the workspace's retraining (``retrain --arch ARCH --epochs 1 --batch-size 32``)."""
GROUND_TRUTH_ARCHS = ("e6:k3+k5-e3:k7-e6:k3", "e3:k3-e3:k3-e3:k3", "e6:k9-e6:k9-e6:k9")


# --- command lines ------------------------------------------------------------------------------------------

ARCH = "e6:k3+k5-e3:k7-e6:k3"
"""A valid architecture of the tiny space (m=4)."""

BAD = {
    "count": ["0", "-1", "-7", "1.5", "abc", "", "1e3", "0x10", "nan"],
    "count0": ["-1", "-7", "1.5", "abc", ""],
    "seed": ["-1", "-99", str(2**63), str(10**30), "1.5", "abc", ""],
    "lr": ["0", "-0.1", "nan", "inf", "-inf", "1e308", "1e999", "abc", ""],
    "nonneg": ["-0.1", "-1e308", "nan", "inf", "-inf", "abc", ""],
    "fraction": ["1", "1.5", "-0.1", "nan", "inf", "abc"],
    "limit": ["0", "-1", "nan", "inf", "-inf", "abc", ""],
    "choice": ["nope", "", "x y"],
    "device": ["meta", "mps", "gpu", "", "tpu", "-1", "cpu:x"],
}
"""Invalid values of each kind of option."""

BASES = {
    name: line.replace("ARCH", ARCH).split()
    for name, line in {
        "train": "train {new}/t --space tiny --data digits --train-subset 64 --batch-size 32",
        "resume": "train {run} --resume",
        "evaluate": "evaluate {run} --arch ARCH --calib-size 64",
        "search": "search {run} --budget 4 --population 2 --calib-size 64 --out {new}/s",
        "benchmark": "search --benchmark nb201 --budget 4 --population 2 --out {new}/b",
        "export": "export {run} --arch ARCH --out {new}/e --calibrate none",
        "retrain": "retrain --space tiny --data digits --arch ARCH --epochs 1 --train-subset 64 --batch-size 32 "
        "--out {new}/r",
        "retrain-run": "retrain {run} --epochs 1 --train-subset 64 --out {new}/rr",
        "pipeline": "pipeline {new}/p --quick --space tiny --data digits --train-subset 64 --retrain-subset 64 "
        "--budget 4 --population 2",
        "groundtruth": "groundtruth --out {new}/gt.csv --space tiny --data digits --archs 2 --epochs 1 "
        "--train-subset 64 --batch-size 32",
        "rank": "rank {run} --ground-truth {gt} --calib-size 64 --resamples 10",
        "report": "report {run} --images 16 --archs 2 --calib-size 64 --out {new}/rep",
        "spaces": "spaces",
    }.items()
}
"""A valid, small command of every kind: each case makes one of its options invalid."""

OPTIONS = {
    "train": {
        "--epochs": "count", "--batch-size": "count", "--lr": "lr", "--warmup-epochs": "nonneg",
        "--weight-decay": "nonneg", "--grad-clip": "nonneg", "--label-smoothing": "fraction", "--seed": "seed",
        "--train-subset": "count", "--checkpoint-every": "count0", "--micro-batches": "count", "--m": "count",
        "--space": "choice", "--data": "choice", "--strategy": "choice", "--bn-policy": "choice", "--amp": "choice",
        "--device": "device",
    },
    "resume": {
        "--lr": "lr", "--epochs": "count", "--seed": "seed", "--checkpoint-every": "count0", "--device": "device",
    },
    "evaluate": {"--calibrate": "choice", "--calib-size": "count", "--calib-batches": "count", "--device": "device"},
    "search": {
        "--algo": "choice", "--budget": "count", "--population": "count", "--max-flops": "limit",
        "--max-params": "limit", "--seed": "seed", "--calibrate": "choice", "--calib-size": "count",
        "--calib-batches": "count", "--device": "device",
    },
    "benchmark": {"--benchmark": "choice", "--budget": "count", "--seed": "seed", "--max-flops": "limit"},
    "export": {"--calibrate": "choice", "--device": "device", "--algo": "choice"},
    "retrain": {
        "--epochs": "count", "--batch-size": "count", "--lr": "lr", "--seed": "seed", "--train-subset": "count",
        "--space": "choice", "--data": "choice", "--device": "device",
    },
    "retrain-run": {"--epochs": "count", "--lr": "lr", "--seed": "seed", "--algo": "choice", "--data": "choice"},
    "pipeline": {
        "--epochs": "count", "--m": "count", "--train-subset": "count", "--budget": "count", "--population": "count",
        "--max-flops": "limit", "--retrain-epochs": "count", "--retrain-subset": "count", "--seed": "seed",
        "--space": "choice", "--data": "choice", "--device": "device",
    },
    "groundtruth": {
        "--archs": "count", "--m": "count", "--epochs": "count", "--batch-size": "count", "--lr": "lr",
        "--seed": "seed", "--sample-seed": "seed", "--split-seed": "seed", "--val-size": "nonneg",
        "--train-subset": "count", "--benchmark": "choice", "--space": "choice", "--data": "choice",
        "--device": "device",
    },
    "rank": {
        "--target": "choice", "--resamples": "count", "--seed": "seed", "--calibrate": "choice",
        "--calib-size": "count", "--device": "device",
    },
    "report": {
        "--images": "count", "--archs": "count", "--calib-size": "count", "--seed": "seed", "--calibrate": "choice",
        "--device": "device",
    },
    "spaces": {"--m": "count"},
}  # fmt: skip
"""Per command, the options fuzzed and the kind of their values."""

EXTRA = {
    ("train", "--m"): ["5", "99"],
    ("train", "--micro-batches"): ["5", "64"],
    ("train", "--train-subset"): ["100000"],
    ("train", "--amp"): ["fp16"],
    ("train", "--batch-size"): ["100000"],
    ("resume", "--epochs"): ["5"],
    ("resume", "--seed"): ["3"],
    ("search", "--population"): ["1"],
    ("search", "--max-flops"): ["0.001"],
    ("retrain", "--train-subset"): ["100000"],
    ("retrain", "--batch-size"): ["100000"],
    ("pipeline", "--population"): ["1"],
    ("pipeline", "--max-flops"): ["0.001"],
    ("pipeline", "--retrain-subset"): ["10000000"],
    ("pipeline", "--m"): ["99"],
    ("groundtruth", "--m"): ["99"],
    ("groundtruth", "--archs"): ["100000"],
    ("groundtruth", "--val-size"): ["0.999999", "100000"],
    ("groundtruth", "--train-subset"): ["100000"],
}
"""Values invalid for one option in particular (beyond the range, or beyond what the data or space allows)."""


def option_cases() -> list[tuple[str, list[str]]]:
    """One command line per (command, option, invalid value)."""
    cases = []
    for base, options in OPTIONS.items():
        for option, kind in options.items():
            for value in BAD[kind] + EXTRA.get((base, option), []):
                cases.append((f"{base} {option}={value!r}", [*BASES[base], option, value]))
    return cases


def usage_cases() -> list[tuple[str, list[str]]]:
    """Malformed command lines: unknown commands and options, missing and extra values, both run spellings."""
    cases: list[tuple[str, list[str]]] = [
        ("no such command", ["trian"]),
        ("no such command, options", ["serach", "--budget", "3"]),
        ("option before command", ["--budget", "3", "search"]),
        ("root option", ["--nope"]),
        ("evaluate without --arch", ["evaluate", "{run}"]),
        ("rank without --ground-truth", ["rank", "{run}"]),
        ("groundtruth without --out", ["groundtruth"]),
        ("evaluate without a run", ["evaluate", "--arch", ARCH]),
        ("two run folders", ["evaluate", "{run}", "--run", "{empty}", "--arch", ARCH]),
        ("train two run folders", ["train", "{new}/a", "--run", "{new}/b"]),
        ("export without a run", ["export"]),
        ("train --resume without a run", ["train", "--resume"]),
        ("search without a run", ["search"]),
        ("retrain with both", ["retrain", "{run}", "--arch", ARCH]),
        ("retrain with neither", ["retrain"]),
        ("retrain run with --space", ["retrain", "{run}", "--space", "tiny"]),
        ("retrain arch with --algo", ["retrain", "--space", "tiny", "--arch", ARCH, "--algo", "nsga2"]),
        ("search --resume --overwrite", [*BASES["search"], "--resume", "--overwrite"]),
        ("search --resume of nothing", [*BASES["search"], "--resume"]),
        ("objectives empty", [*BASES["search"], "--objectives", ","]),
        ("objectives twice", [*BASES["search"], "--objectives", "accuracy,accuracy"]),
        ("objectives unknown", [*BASES["search"], "--objectives", "accuracy,speed"]),
        ("objectives blank", [*BASES["search"], "--objectives", ""]),
        ("nb101 without file", ["search", "--benchmark", "nb101", "--out", "{new}/n"]),
        ("nb101 missing file", ["search", "--benchmark", "nb101", "--benchmark-file", "{new}/x.tfrecord"]),
        ("nb101 file is a folder", ["search", "--benchmark", "nb101", "--benchmark-file", "{empty}"]),
        ("report html of nothing", ["report", "{empty}", "--html"]),
        ("rank missing ground truth", ["rank", "{run}", "--ground-truth", "{new}/gt.csv"]),
        ("rank ground truth is a folder", ["rank", "{run}", "--ground-truth", "{empty}"]),
        ("rank ground truth is not csv", ["rank", "{run}", "--ground-truth", "{file}"]),
        ("evaluate a file", ["evaluate", "{file}", "--arch", ARCH]),
        ("evaluate an empty folder", ["evaluate", "{empty}", "--arch", ARCH]),
        ("train over a file", ["train", "{file}", "--space", "tiny", "--data", "digits"]),
        ("train into a file's folder", ["train", "{file}/run", "--space", "tiny", "--data", "digits"]),
        ("train over a run", ["train", "{run}", "--space", "tiny", "--data", "digits"]),
        ("search --out a file", [*BASES["search"][:-2], "--out", "{file}"]),
        ("search over results", ["search", "{run}", "--algo", "random", "--budget", "4", "--calib-size", "64"]),
        ("export --out a file", [*BASES["export"][:-4], "--out", "{file}"]),
        ("export over an export", ["export", "{run}", "--arch", ARCH, "--out", "{export}"]),
        ("export of no front", ["export", "{run}", "--algo", "evolution"]),
        ("retrain --out a file", [*BASES["retrain"][:-2], "--out", "{file}"]),
        ("groundtruth --out a folder", [*BASES["groundtruth"][:2], "{empty}", *BASES["groundtruth"][3:]]),
        ("groundtruth --out not csv", [*BASES["groundtruth"][:2], "{file}", *BASES["groundtruth"][3:]]),
        ("data-dir a file", ["train", "{new}/d", "--data", "fashion-mnist", "--data-dir", "{file}"]),
        ("data-dir missing", ["train", "{new}/d", "--data", "cifar10", "--data-dir", "{new}/nowhere"]),
        ("pipeline over a run", ["pipeline", "{run}", "--space", "tiny", "--data", "digits"]),
        ("pipeline resume of nothing", [*BASES["pipeline"], "--resume", "--space", "cifar-s1"]),
    ]
    for name in ("train", "evaluate", "search", "export", "retrain", "pipeline", "groundtruth", "rank", "report"):
        cases += [
            (f"{name} unknown option", [*BASES.get(name, [name]), "--nope"]),
            (f"{name} unknown option with value", [*BASES.get(name, [name]), "--nope=3"]),
            (f"{name} extra argument", [*BASES.get(name, [name]), "extra", "more"]),
            (f"{name} flag with a value", [*BASES.get(name, [name]), "--help=yes"]),
        ]
    for base, options in OPTIONS.items():
        option = next(iter(options))
        cases.append((f"{base} {option} without its value", [*BASES[base], option]))
    return cases


_OPTION = re.compile(r"^e(-?[0-9]+(?:\.[0-9]+)?)$")
_OPS = {"k3", "k5", "k7", "k9"}


def tiny_arch_is_valid(text: str) -> bool:
    """Whether ``text`` is an architecture string of the tiny space with at most 4 paths per layer: the rule
    written out independently of mixpath's parser, so that it can judge what the parser accepts."""
    tokens = text.strip().split("-")
    if len(tokens) != 3:
        return False
    for token in tokens:
        options, colon, paths = token.strip().rpartition(":")
        match = _OPTION.match(options)
        if not colon or match is None or float(match.group(1)) not in (3.0, 6.0):
            return False
        names = paths.split("+")
        if len(set(names)) != len(names) or not set(names) <= _OPS:
            return False
    return True


def arch_texts(n_random: int = 120) -> list[tuple[str, str]]:
    """Invalid architectures of the tiny space: hand-made ones, JSON of every wrong type, random mutations."""
    layer = {"paths": ["k3"], "e": 6}
    made = {
        "empty": "",
        "blank": "   ",
        "two layers": "e6:k3-e3:k5",
        "four layers": "e6:k3-e3:k5-e6:k7-e3:k9",
        "unknown op": "e6:k4-e3:k5-e6:k7",
        "path twice": "e6:k3+k3-e3:k5-e6:k7",
        "no option": "k3-e3:k5-e6:k7",
        "bad option": "x6:k3-e3:k5-e6:k7",
        "option value": "e5:k3-e3:k5-e6:k7",
        "empty path": "e6:-e3:k5-e6:k7",
        "trailing plus": "e6:k3+-e3:k5-e6:k7",
        "trailing dash": "e6:k3-e3:k5-e6:k7-",
        "colon only": ":-:-:",
        "five paths": "e6:k3+k5+k7+k9+k11-e3:k5-e6:k7",
        "unicode": "e6:k3-e3:k5-e6:kÿ",
        "nul": "e6:k3-e3:k5-e6:k7\x00",
        "json array": "[1, 2, 3]",
        "json broken": '{"layers": [',
        "json no layers": "{}",
        "json layers text": '{"layers": "e6:k3"}',
        "json layers null": '{"layers": null}',
        "json layer null": '{"layers": [null, null, null]}',
        "json layer list": '{"layers": [[], [], []]}',
        "json paths int": json.dumps({"layers": [{"paths": [3], "e": 6}] * 3}),
        "json paths null": json.dumps({"layers": [{"paths": [None], "e": 6}] * 3}),
        "json paths nested": json.dumps({"layers": [{"paths": [["k3"]], "e": 6}] * 3}),
        "json paths object": json.dumps({"layers": [{"paths": [{"k": 3}], "e": 6}] * 3}),
        "json paths text": json.dumps({"layers": [{"paths": "k3", "e": 6}] * 3}),
        "json paths empty": json.dumps({"layers": [{"paths": [], "e": 6}] * 3}),
        "json option text": json.dumps({"layers": [{"paths": ["k3"], "e": "6"}] * 3}),
        "json option null": json.dumps({"layers": [{"paths": ["k3"], "e": None}] * 3}),
        "json option list": json.dumps({"layers": [{"paths": ["k3"], "e": [6]}] * 3}),
        "json option bool": json.dumps({"layers": [{"paths": ["k3"], "e": True}] * 3}),
        "json option huge": '{"layers": [' + ",".join(['{"paths": ["k3"], "e": 1e999}'] * 3) + "]}",
        "json option nan": '{"layers": [' + ",".join(['{"paths": ["k3"], "e": NaN}'] * 3) + "]}",
        "json option key": json.dumps({"layers": [{"paths": ["k3"], "e": 6, "x1": 2}] * 3}),
        "json two layers": json.dumps({"layers": [layer] * 2}),
        "json nested 1000": '{"layers": ' + "[" * 1000 + "]" * 1000 + "}",
        "json nested 100000": '{"layers": ' + "[" * 100000 + "]" * 100000 + "}",
        "json objects nested": '{"layers": [' + '{"a":' * 2000 + "1" + "}" * 2000 + "]}",
    }
    cases = [(f"arch {name}", text) for name, text in made.items()]
    rng = random.Random(0)
    alphabet = 'ek0123456789:+-,.{}[]" x_'
    count = 0
    while count < n_random:
        chars = list(ARCH)
        for _ in range(rng.randint(1, 4)):
            where = rng.randrange(len(chars) + 1)
            action = rng.choice(("delete", "insert", "replace"))
            if action == "delete" and chars:
                del chars[min(where, len(chars) - 1)]
            elif action == "insert":
                chars.insert(where, rng.choice(alphabet))
            elif chars:
                chars[min(where, len(chars) - 1)] = rng.choice(alphabet)
        text = "".join(chars)
        if text.strip().startswith("{") or tiny_arch_is_valid(text):
            continue  # a valid mutant is no bad input; JSON mutants are made above
        cases.append((f"arch mutant {count} {text!r}", text))
        count += 1
    return cases


def arch_cases() -> list[tuple[str, list[str]]]:
    """Every invalid architecture through each command that takes one."""
    cases = []
    for name, text in arch_texts():
        cases.append((f"evaluate {name}", ["evaluate", "{run}", "--arch", text, "--calib-size", "64"]))
        cases.append((f"retrain {name}", [*BASES["retrain"][:6], text, *BASES["retrain"][7:]]))
        cases.append((f"export {name}", ["export", "{run}", "--arch", text, "--out", "{new}/e"]))
    return cases


def cli_cases() -> list[tuple[str, list[str]]]:
    return option_cases() + usage_cases() + arch_cases()


def fill(args: Sequence[str], places: dict[str, Path]) -> list[str]:
    """The command line with its ``{name}`` placeholders replaced by the workspace's paths."""
    out = []
    for arg in args:
        for name, path in places.items():
            arg = arg.replace("{" + name + "}", str(path))
        out.append(arg)
    return out


# --- run files ----------------------------------------------------------------------------------------------


WRONG = {
    "text": [None, 1, 1.5, True, [], {}],
    "int1": [None, "1", 1.5, True, [], {}, 0, -1],
    "int0": [None, "1", 1.5, True, [], -1],
    "number": [None, "1", True, [], {}, -1.0],
    "seed": [None, "0", 1.5, True, -1, 2**64],
    "fraction": [None, "0.1", True, [], -0.5, 1.5],
    "optional_text": [1, True, [], {}],
    "optional_int1": ["64", 1.5, True, [], 0, -5],
}
"""Values of the wrong type or range for each kind of field of config.json."""

CONFIG_FIELDS = {
    "space": "text", "data": "text", "strategy": "text", "bn_policy": "text", "amp": "text",
    "data_dir": "optional_text", "epochs": "int1", "batch_size": "int1", "m": "int1", "micro_batches": "int1",
    "lr": "number", "momentum": "fraction", "weight_decay": "number", "grad_clip": "number",
    "label_smoothing": "fraction", "warmup_epochs": "number", "seed": "seed", "val_size": "fraction",
    "train_subset": "optional_int1", "checkpoint_every": "int0", "eval_archs": "int0",
}  # fmt: skip


Mutation = Callable[[object], object]
"""Makes a bad file's content from the good one (parsed JSON, or the checkpoint's dict): text, bytes or an
object to ``torch.save``."""


def _with(key: str, value: object) -> Mutation:
    return lambda good: json.dumps({**good, key: value})  # type: ignore[dict-item]


def _without(key: str) -> Mutation:
    return lambda good: json.dumps({k: v for k, v in good.items() if k != key})  # type: ignore[attr-defined]


def fixed(text: str) -> Mutation:
    return lambda good: text


def config_variants() -> list[tuple[str, Mutation]]:
    """config.json with one field wrong, or the whole file wrong."""
    variants = [
        (f"config {field}={value!r}", _with(field, value))
        for field, kind in CONFIG_FIELDS.items()
        for value in WRONG[kind]
    ]
    variants += [
        ("config unknown key", _with("speed", 1)),
        ("config list", lambda good: json.dumps([good])),
        ("config text", fixed(json.dumps("config"))),
        ("config null", fixed("null")),
        ("config number", fixed("3")),
        ("config empty", fixed("")),
        ("config torn", lambda good: json.dumps(good)[:50]),
        ("config not utf-8", fixed("\udcff{}")),
        ("config nested", fixed("[" * 100000 + "]" * 100000)),
        ("config binary", fixed("\x00\x01\x02")),
        ("config space unknown", _with("space", "nope")),
        ("config space other", _with("space", "fmnist-s1")),
        ("config data unknown", _with("data", "svhn")),
        ("config strategy unknown", _with("strategy", "darts")),
        ("config bn unknown", _with("bn_policy", "group")),
        ("config m other", _with("m", 2)),
        ("config bn other", _with("bn_policy", "shared")),
    ]
    return variants


def checkpoint_variants() -> list[tuple[str, Mutation]]:
    """checkpoint.pt with the wrong structure: objects to ``torch.save``, or raw bytes."""
    import torch

    def model(change: Callable[[dict], object]) -> Mutation:
        return lambda good: {**good, "model": change(good["model"])}  # type: ignore[index]

    def entry(key: str, value: object) -> Mutation:
        return lambda good: {**good, key: value}  # type: ignore[dict-item]

    def without(key: str) -> Mutation:
        return lambda good: {k: v for k, v in good.items() if k != key}  # type: ignore[attr-defined]

    def first(weights: dict) -> str:
        return next(iter(weights))

    variants: list[tuple[str, Mutation]] = [
        ("checkpoint list", lambda good: [1, 2]),
        ("checkpoint tensor", lambda good: torch.ones(3)),
        ("checkpoint int", lambda good: 3),
        ("checkpoint empty dict", lambda good: {}),
        ("checkpoint no model", without("model")),
        ("checkpoint model list", model(lambda w: [1])),
        ("checkpoint model text", model(lambda w: "weights")),
        ("checkpoint model empty", model(lambda w: {})),
        ("checkpoint model one key", model(lambda w: {first(w): w[first(w)]})),
        ("checkpoint model extra key", model(lambda w: {**w, "extra.weight": torch.ones(2)})),
        ("checkpoint model shape", model(lambda w: {**w, first(w): torch.ones(1, 2, 3, 4, 5)})),
        ("checkpoint model value", model(lambda w: {**w, first(w): 1.0})),
        ("checkpoint model renamed", model(lambda w: {k + "x": v for k, v in w.items()})),
        ("checkpoint optimizer missing", without("optimizer")),
        ("checkpoint optimizer list", entry("optimizer", [])),
        ("checkpoint optimizer empty", entry("optimizer", {})),
        ("checkpoint optimizer groups", entry("optimizer", {"state": {}, "param_groups": []})),
        ("checkpoint optimizer groups text", entry("optimizer", {"state": {}, "param_groups": "x"})),
        ("checkpoint optimizer state text", lambda good: {**good, "optimizer": {**good["optimizer"], "state": 3}}),
        ("checkpoint no metrics", without("metrics")),
        ("checkpoint metrics dict", entry("metrics", {"a": 1})),
        ("checkpoint metrics ints", entry("metrics", [1, 2])),
        ("checkpoint partial missing", without("partial")),
        ("checkpoint partial list", entry("partial", [0, 0])),
        ("checkpoint partial key", lambda good: {**good, "partial": {**good["partial"], "x": 1}}),
        ("checkpoint partial text", lambda good: {**good, "partial": {**good["partial"], "loss": "x"}}),
        ("checkpoint partial short", entry("partial", {"loss": 0.0})),
        ("checkpoint raw bytes", lambda good: bytes(range(256)) * 4),
        ("checkpoint zero bytes", lambda good: b""),
        ("checkpoint pickle", lambda good: b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x03."),
        ("checkpoint zip garbage", lambda good: b"PK\x03\x04" + b"\x00" * 200),
    ]  # type: ignore[index]
    for fraction in (0.01, 0.5, 0.99):
        variants.append((f"checkpoint torn at {fraction}", lambda good, f=fraction: ("torn", f)))
    for key in ("epoch", "step"):
        for value in (None, "1", 1.5, -1, [], 10**6):
            variants.append((f"checkpoint {key}={value!r}", entry(key, value)))
    return variants


def search_state_variants(algorithm_keys: Sequence[str]) -> list[tuple[str, Mutation]]:
    """search_state.json with the wrong structure (``algorithm_keys``: its searcher's own state entries)."""

    def record(change: Callable[[dict], object]) -> Mutation:
        return lambda good: json.dumps({**good, "evaluated": [change(good["evaluated"][0])]})  # type: ignore

    def config(key: str, value: object) -> Mutation:
        return lambda good: json.dumps({**good, "config": {**good["config"], key: value}})  # type: ignore

    variants: list[tuple[str, Mutation]] = [
        ("state list", lambda good: json.dumps([good])),
        ("state null", fixed("null")),
        ("state empty object", fixed("{}")),
        ("state version", _with("version", 99)),
        ("state version text", _with("version", "1")),
        ("state algorithm", _with("algorithm", "evolution")),
        ("state space", _with("space", "nb201")),
        ("state m", _with("m", "4")),
        ("state config null", _with("config", None)),
        ("state config list", _with("config", [])),
        ("state config key", config("x", 1)),
        ("state config seed", config("seed", "0")),
        ("state config objectives", config("objectives", "accuracy")),
        ("state reference text", _with("reference", {"accuracy": "x"})),
        ("state reference list", _with("reference", [1])),
        ("state history text", _with("history", "x")),
        ("state history ints", _with("history", [1, 2])),
        ("state evaluated dict", _with("evaluated", {})),
        ("state evaluated ints", _with("evaluated", [1])),
        ("state evaluated arch", record(lambda r: {**r, "arch": "k4"})),
        ("state evaluated arch int", record(lambda r: {**r, "arch": 3})),
        ("state evaluated metrics", record(lambda r: {**r, "metrics": {"accuracy": "x"}})),
        ("state evaluated metrics list", record(lambda r: {**r, "metrics": [1]})),
        ("state evaluated generation", record(lambda r: {**r, "generation": "x"})),
        ("state evaluated no metrics", record(lambda r: {"arch": r["arch"]})),
        ("state evaluated twice", lambda good: json.dumps({**good, "evaluated": good["evaluated"][:1] * 2})),
        ("state rejected ints", _with("rejected", [1])),
        ("state rejected arch", _with("rejected", ["k4"])),
        ("state rejected text", _with("rejected", "e6:k3")),
        ("state algorithm state list", _with("algorithm_state", [1])),
        ("state algorithm state text", _with("algorithm_state", "x")),
        ("state algorithm state keys", _with("algorithm_state", {"x": 1})),
        ("state torn", lambda good: json.dumps(good)[:100]),
        ("state nested", fixed("[" * 100000 + "]" * 100000)),
    ]

    def algorithm(key: str, value: object) -> Mutation:
        return lambda good: json.dumps(
            {**good, "algorithm_state": {**good["algorithm_state"], key: value}}  # type: ignore[index]
        )

    for key in algorithm_keys:
        for wrong in (None, "x", [], {}, -1, [[1, 2]], [["k4"]]):
            if key == "G" and wrong == []:
                continue  # what a search without constraints saves: no constraint values
            variants.append((f"state algorithm {key}={wrong!r}", algorithm(key, wrong)))
    return variants


def front_variants() -> list[tuple[str, Mutation]]:
    """front.json with the wrong structure."""

    def item(change: Callable[[dict], object]) -> Mutation:
        return lambda good: json.dumps([change(good[0])])  # type: ignore[index]

    return [
        ("front empty", fixed("[]")),
        ("front object", fixed("{}")),
        ("front null", fixed("null")),
        ("front ints", fixed("[1, 2]")),
        ("front no arch", item(lambda i: {"metrics": i["metrics"]})),
        ("front arch int", item(lambda i: {**i, "arch": 3})),
        ("front arch bad", item(lambda i: {**i, "arch": "k4"})),
        ("front no metrics", item(lambda i: {"arch": i["arch"]})),
        ("front metrics list", item(lambda i: {**i, "metrics": [1]})),
        ("front accuracy text", item(lambda i: {**i, "metrics": {**i["metrics"], "accuracy": "x"}})),
        ("front accuracy null", item(lambda i: {**i, "metrics": {**i["metrics"], "accuracy": None}})),
        ("front accuracy missing", item(lambda i: {**i, "metrics": {"flops": 1.0}})),
        ("front torn", lambda good: json.dumps(good)[:20]),
    ]


def ground_truth_variants(header: str, lines: Sequence[str]) -> list[tuple[str, str]]:
    """Ground-truth CSV contents that are not ground truth (``lines``: three good rows, one made bad)."""
    rest = "".join(line + "\n" for line in lines[1:])
    cells = lines[0].split(",")
    variants = [
        ("gt empty", ""),
        ("gt header only", header + "\n"),
        ("gt two rows", header + "\n" + rest),
        ("gt other header", "a,b,c\n1,2,3\n"),
        ("gt binary", "\x00\x01\n\x02\n"),
        ("gt short line", header + "\n" + ",".join(cells[:3]) + "\n" + rest),
        ("gt long line", header + "\n" + lines[0] + ",9,9\n" + rest),
    ]
    for index, column in enumerate(header.split(",")):
        for wrong in ("x", "", "nan" if column != "arch" else "k4", "1e999" if column != "arch" else "e6"):
            changed = cells.copy()
            changed[index] = wrong
            variants.append((f"gt {column}={wrong!r}", header + "\n" + ",".join(changed) + "\n" + rest))
    return variants


def settings_variants() -> list[tuple[str, str, Mutation]]:
    """A retraining folder's settings.json and result.json, wrong: (name, file, mutation)."""
    return [
        ("settings list", "settings.json", fixed("[]")),
        ("settings null", "settings.json", fixed("null")),
        ("settings text", "settings.json", fixed('"x"')),
        ("settings recipe list", "settings.json", _with("recipe", [1])),
        ("settings torn", "settings.json", lambda good: json.dumps(good)[:10]),
        ("result list", "result.json", fixed("[]")),
        ("result null", "result.json", fixed("null")),
        ("result text", "result.json", fixed('"x"')),
        ("result torn", "result.json", lambda good: json.dumps(good)[:10]),
        ("result accuracy text", "result.json", _with("test_acc", "x")),
    ]


def eval_cache_lines(key: str, arch: str) -> list[tuple[str, str]]:
    """Lines of eval_cache.jsonl that hold no usable score (for the run's key and architecture)."""
    good = {"arch": arch, "key": key, "metrics": {"accuracy": 50.0, "loss": 1.0}}
    return [
        ("cache metrics text", json.dumps({**good, "metrics": "x"})),
        ("cache metrics list", json.dumps({**good, "metrics": [1, 2]})),
        ("cache metrics null", json.dumps({**good, "metrics": None})),
        ("cache metric text", json.dumps({**good, "metrics": {"accuracy": "x"}})),
        ("cache metric null", json.dumps({**good, "metrics": {"accuracy": None}})),
        ("cache metric list", json.dumps({**good, "metrics": {"accuracy": [1]}})),
        ("cache metric bool", json.dumps({**good, "metrics": {"accuracy": True}})),
        ("cache arch int", json.dumps({**good, "arch": 3})),
        ("cache arch list", json.dumps({**good, "arch": [arch]})),
        ("cache key int", json.dumps({**good, "key": 1})),
        ("cache line list", json.dumps([good])),
        ("cache line text", json.dumps("x")),
        ("cache line number", "3"),
        ("cache line broken", json.dumps(good)[:-3]),
        ("cache line nested", "[" * 100000 + "]" * 100000),
        ("cache line binary", "\x00\x01"),
        ("cache no metrics", json.dumps({"arch": arch, "key": key})),
        ("cache big number", json.dumps(good).replace("50.0", "1" + "0" * 5000)),
    ]


# --- TFRecord files -----------------------------------------------------------------------------------------


def payload(metrics: bytes, fields: list | None = None) -> bytes:
    """The benchmark's JSON payload around a ModelMetrics protobuf."""
    import base64

    row = list(fields) if fields is not None else ["abc", 108, "0" * 49, "input,conv3x3-bn-relu,output", None]
    if row and row[-1] is None:  # the metrics go last
        row[-1] = base64.b64encode(metrics).decode()
    return json.dumps(row).encode()


def tfrecord_variants() -> list[tuple[str, bytes, bool]]:
    """Crafted TFRecord files, each invalid: (name, file bytes, verify the CRCs)."""
    import base64
    import struct

    double = varint(3 << 3 | 1) + struct.pack("<d", 0.5)
    evaluation = varint(1 << 3 | 2) + varint(len(double)) + double
    good_metrics = evaluation + varint(2 << 3 | 0) + varint(1000)
    proto = {
        "no evaluation": varint(2 << 3 | 0) + varint(5),
        "varint past end": b"\xff\xff\xff",
        "varint endless": b"\x80" * 50,
        "fixed64 short": varint(1 << 3 | 1) + b"\x00\x00",
        "fixed32 short": varint(1 << 3 | 5) + b"\x00",
        "bytes past end": varint(1 << 3 | 2) + varint(1000) + b"\x00",
        "bytes huge length": varint(1 << 3 | 2) + varint(2**62),
        "wire 3": varint(1 << 3 | 3),
        "wire 7": varint(1 << 3 | 7),
        "nested garbage": varint(1 << 3 | 2) + varint(3) + b"\xff\xff\xff",
        "nested fixed64 short": varint(1 << 3 | 2) + varint(4) + varint(3 << 3 | 1) + b"\x00\x00\x00",
        "huge varint": varint(2 << 3 | 0) + varint(2**200) + evaluation,
    }
    fields = {
        "fields short": ["abc", 108, "0", None],
        "fields long": ["abc", 108, "0", "ops", None, 1],
        "epochs text": ["abc", "x", "0", "ops", None],
        "epochs null": ["abc", None, "0", "ops", None],
        "epochs float": ["abc", 1.5, "0", "ops", None],
        "epochs list": ["abc", [1], "0", "ops", None],
        "hash list": [[1], 108, "0", "ops", None],
        "hash null": [None, 108, "0", "ops", "AAAA"],
        "adjacency int": ["abc", 108, 7, "ops", None],
        "ops list": ["abc", 108, "0", ["a"], None],
        "ops null": ["abc", 108, "0", None, "AAAA"],
        "metrics int": ["abc", 108, "0", "ops", 5],
        "metrics bad base64": ["abc", 108, "0", "ops", "!!!"],
        "metrics list": ["abc", 108, "0", "ops", [1]],
    }
    variants: list[tuple[str, bytes, bool]] = []
    for verify in (True, False):
        v = "crc" if verify else "nocrc"
        variants += [
            (f"{v} length 2^40", frame(b"x", length=2**40), verify),
            (f"{v} length 2^63", frame(b"x", length=2**63), verify),
            (f"{v} length 2^64-1", frame(b"x", length=2**64 - 1), verify),
            (f"{v} length past end", frame(b"abc", length=4), verify),
            (f"{v} length short", frame(b"abcdef", length=2), verify),
            (f"{v} header only", frame(b"")[:12], verify),
            (f"{v} header torn", b"\x01\x02\x03", verify),
            (f"{v} footer torn", frame(payload(good_metrics))[:-2], verify),
            (f"{v} payload not utf-8", frame(b"\xff\xfe\xfd"), verify),
            (f"{v} payload not json", frame(b"not json"), verify),
            (f"{v} payload object", frame(b'{"a": 1}'), verify),
            (f"{v} payload number", frame(b"3"), verify),
            (f"{v} payload nested", frame(b"[" * 100000 + b"]" * 100000), verify),
            (f"{v} payload empty", frame(b""), verify),
            (f"{v} good then garbage", frame(payload(good_metrics)) + b"\x00" * 7, verify),
        ]
        for name, metrics in proto.items():
            variants.append((f"{v} protobuf {name}", frame(payload(metrics)), verify))
        for name, row in fields.items():
            variants.append((f"{v} {name}", frame(payload(good_metrics, row)), verify))
    variants += [
        ("crc length mismatch", frame(payload(good_metrics), good_crc=False), True),
        ("crc data mismatch", frame(payload(good_metrics))[:-4] + b"\x00\x00\x00\x00", True),
    ]
    rng = random.Random(1)
    for index in range(40):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        variants.append((f"random bytes {index}", data, index % 2 == 0))
    for index in range(20):  # a valid frame around random payload bytes
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80)))
        variants.append((f"random payload {index}", frame(data), True))
    for index in range(20):  # valid JSON around random base64 protobuf bytes with one field made to run past the end
        metrics = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))) + varint(1 << 3 | 2) + b"\x7f"
        variants.append((f"random protobuf {index}", frame(payload(metrics)), True))
    assert base64  # used by payload
    return variants


def expect_refusal(call: Callable[[], object]) -> list[str]:
    """Problems of a library call on a bad input: it must raise MixPathError with a one-line message."""
    try:
        call()
    except MixPathError as err:
        return [] if "\n" not in str(err) else ["other refusals"]
    except Exception:  # noqa: BLE001 - any other exception is what the user would see as a traceback
        return ["tracebacks"]
    return ["accepted invalid"]
