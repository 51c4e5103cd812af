"""The command line: one-line errors with exit status 2 (the whole pipeline: tests/test_pipeline.py)."""

import os
import subprocess
import sys

import pytest


def _mixpath(*args, cwd=None):
    code = "import sys; from mixpath.cli import main; sys.argv = ['mixpath'] + sys.argv[1:]; main()"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--run", "{tmp}/r", "--space", "nope"], "unknown search space 'nope'"),
        (["train", "--run", "{tmp}/r", "--data", "svhn"], "unknown dataset 'svhn'"),
        (["train", "--run", "{tmp}/r", "--strategy", "spos", "--m", "2"], "m must be 1"),
        (["train", "--run", "{tmp}/r", "--data", "fashion-mnist", "--data-dir", "{tmp}/nowhere"], "{tmp}/nowhere"),
        (["evaluate", "{tmp}/none", "--arch", "k3"], "not a mixpath run folder"),
        (["search", "--benchmark", "nb999"], "unknown benchmark 'nb999'"),
        (["search", "--benchmark", "nb201", "--objectives", "accuracy,speed"], "unknown objective 'speed'"),
        (["retrain", "--space", "tiny", "--arch", "e6:k3-e3:k4-e6:k3"], "unknown op 'k4'"),
        (["pipeline", "--run", "{tmp}/r", "--space", "tiny", "--max-flops", "0.01"], "no architecture of tiny fits"),
        (["pipeline", "{tmp}/r", "--space", "tiny", "--processes", "0"], "--processes=0 must be a whole number >= 1"),
        (["retrain", "--space", "tiny", "--arch", "e6:k3-e3:k3-e6:k3", "--processes", "2"], "drop it"),
        (["groundtruth", "--out", "{tmp}/gt.csv", "--processes", "-1"], "--processes=-1 must be a whole number >= 1"),
        (["pipeline", "{tmp}/r", "--space", "tiny", "--retrain-seeds", "0"], "--retrain-seeds=0 must be a whole"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    result = _mixpath(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message.replace("{tmp}", str(tmp_path)) in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_spaces_lists_every_space_with_sizes():
    result = _mixpath("spaces")
    assert result.returncode == 0
    for name in ("cifar-s1", "fmnist-s1", "tiny", "nb201"):
        assert name in result.stdout
    assert "2.7e+04" in result.stdout  # tiny at m=4: (15 * 2) ** 3
