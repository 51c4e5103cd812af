"""Spaces declared in a Python file: the README's snippet runs as written, ``--space-file`` works from every
command that takes ``--space``, and a run of such a space is found by every later command without the flag."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from mixpath.cli import run
from mixpath.errors import MixPathError
from mixpath.spaces import get_space, load_space_file, registry
from mixpath.spaces.space_file import SPACE_FILE, load_run_spaces, space_from_file
from mixpath.training import TrainConfig, train_supernet

README = Path(__file__).resolve().parents[1] / "README.md"
ARCH = "e6:k3-e3:k5+k7-e6:k9-e3:k3+k5+k7+k9"
"""An architecture of the README's my-space (4 layers, kernels 3-9, expansions 3 and 6)."""


def readme_space_snippet() -> str:
    """The Python block under the README's "Declaring a search space", verbatim."""
    section = README.read_text().split("### Declaring a search space", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture
def space_file(tmp_path):
    """The README's snippet saved as my_space.py; my-space is unregistered again afterwards."""
    path = tmp_path / "my_space.py"
    path.write_text(readme_space_snippet())
    yield path
    registry._SPACES.pop("my-space", None)


def forget_my_space() -> None:
    """Unregister my-space, as in a new process that has not run the space file."""
    registry._SPACES.pop("my-space", None)


def mixpath(*args: object) -> int:
    return run([str(arg) for arg in args], fast_runtime=False)


def test_the_readme_space_snippet_runs_as_written(space_file):
    done = subprocess.run([sys.executable, str(space_file)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert load_space_file(space_file) == ["my-space"]
    space = get_space("my-space")
    assert space.max_m() == 4 and space.input_shape == (1, 28, 28)  # the defaults (m=4, 28x28 data) fit it
    assert str(space.parse(ARCH, 4)) == ARCH


@pytest.mark.slow
def test_a_run_of_a_space_file_is_found_by_every_later_command(space_file, tmp_path, capsys):
    folder = tmp_path / "run"
    small = ["--data", "digits", "--epochs", "1", "--train-subset", "192"]
    assert mixpath("train", folder, "--space-file", space_file, *small) == 0
    assert (folder / SPACE_FILE).read_text() == space_file.read_text()  # the run keeps a copy ...
    space_file.unlink()  # ... and needs the original no more
    later = [
        ["evaluate", folder, "--arch", ARCH, "--calib-size", "64"],
        ["search", folder, "--budget", "4", "--population", "4", "--calib-size", "64"],
        ["export", folder],
        ["retrain", folder, "--epochs", "1", "--train-subset", "192"],
        ["report", folder, "--images", "16", "--archs", "2", "--calib-size", "64"],
        ["train", folder, "--resume"],
    ]
    for args in later:
        forget_my_space()
        assert mixpath(*args) == 0, (args, capsys.readouterr().err)
    assert "unknown search space" not in capsys.readouterr().err


def test_space_file_picks_the_files_only_space_or_the_named_one(space_file, tmp_path):
    assert space_from_file(space_file, None) == "my-space"
    assert space_from_file(space_file, "my-space") == "my-space"
    with pytest.raises(MixPathError, match="does not declare 'fmnist-s1' \\(it declares my-space\\)"):
        space_from_file(space_file, "fmnist-s1")
    two = tmp_path / "two.py"
    two.write_text(readme_space_snippet().replace("my-space", "my-other") + readme_space_snippet())
    with pytest.raises(MixPathError, match="declares my-other, my-space; choose one with --space"):
        space_from_file(two, None)
    registry._SPACES.pop("my-other", None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "does not exist"),
        ("x = 1\n", "registers no search space"),
        ("\n\nraise ValueError('bad channels')\n", "line 3: ValueError: bad channels"),
    ],
)
def test_a_bad_space_file_is_a_one_line_error(tmp_path, text, message):
    path = tmp_path / "bad.py"
    if text is not None:
        path.write_text(text)
    with pytest.raises(MixPathError, match=message):
        load_space_file(path)


def test_the_commands_that_take_a_space_take_a_space_file(space_file, tmp_path, capsys):
    assert mixpath("spaces", "--space-file", space_file) == 0
    assert "my-space" in capsys.readouterr().out
    forget_my_space()
    retrained = tmp_path / "retrained"
    small = ["--data", "digits", "--epochs", "1", "--train-subset", "192"]
    assert mixpath("retrain", "--space-file", space_file, "--arch", ARCH, *small, "--out", retrained) == 0
    forget_my_space()
    gt = ["--data", "digits", "--archs", "2", "--epochs", "1", "--train-subset", "192", "--out", tmp_path / "gt.csv"]
    assert mixpath("groundtruth", "--space-file", space_file, *gt) == 0
    assert mixpath("train", tmp_path / "r", "--space-file", space_file, "--space", "tiny") == 2
    assert "does not declare 'tiny'" in capsys.readouterr().err


def test_training_from_python_keeps_the_space_file(space_file, tmp_path):
    load_space_file(space_file)
    config = TrainConfig(space="my-space", data="digits", epochs=1, train_subset=192)
    train_supernet(config, tmp_path / "run", progress=False, space_file=space_file)
    forget_my_space()
    assert load_run_spaces(tmp_path / "run") == ["my-space"]
