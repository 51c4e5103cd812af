"""Fuzz: every generated bad command line is refused with one ``error:`` line and exit status 2, no traceback,
no usage box, and no file of the workspace changed (``tests/fuzzing.py`` makes the cases). Every case runs in
the default test run (so in CI); ``python3 -m pytest -m fuzz`` runs the fuzz suite alone. Both print the counts."""

from __future__ import annotations

import shutil
from pathlib import Path

import fuzzing
import pytest

EVERY = fuzzing.params(fuzzing.cli_cases())


@pytest.fixture(scope="module")
def pristine(fuzz_pristine) -> Path:
    return fuzz_pristine


@pytest.fixture
def workspace(pristine, tmp_path_factory, monkeypatch):
    """The workspace every case of this module runs in (restored from ``pristine`` after a case changed it);
    the current folder, so that a default output folder would land in it too."""
    root = tmp_path_factory.getbasetemp() / "fuzz-workspace"
    if not root.exists():
        shutil.copytree(pristine, root)
    monkeypatch.chdir(root)
    return root


def _places(root: Path) -> dict[str, Path]:
    names = {"run": "run", "gt": "gt.csv", "file": "file.txt", "empty": "empty", "export": "export", "new": "new"}
    return {key: root / value for key, value in names.items()}


def _check(args, workspace, pristine):
    found, outcome = fuzzing.check(fuzzing.fill(args, _places(workspace)), workspace, pristine)
    assert not found, fuzzing.describe(found, outcome)


@pytest.mark.fuzz
@pytest.mark.parametrize("args", EVERY)
def test_fuzz_command_line(args, workspace, pristine):
    _check(args, workspace, pristine)
