"""What a user's second command does to a run: resume with the options it gives (applied, or refused in one
line), a failed start that does not block its retry, no result replaced without --overwrite, and a write that
fails (a full disk) reported in one line naming the file."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
import torch

from mixpath.cli import run
from mixpath.errors import MixPathError
from mixpath.retraining import retrain_architecture
from mixpath.training import Recipe, TrainConfig, train_supernet
from mixpath.training.checkpoint import load_checkpoint

TINY = [
    "--space",
    "tiny",
    "--data",
    "digits",
    "--train-subset",
    "64",
    "--batch-size",
    "32",
    "--epochs",
    "1",
    "--device",
    "cpu",
]
SEARCH = ["--calib-size", "64", "--budget", "4", "--population", "2", "--device", "cpu"]


def _mixpath(capsys, *args: object) -> tuple[int, list[str], str]:
    """``mixpath ARGS`` in this process: exit status, its error lines, and stdout."""
    status = run([str(arg) for arg in args], fast_runtime=False)
    out, err = capsys.readouterr()
    return status, [line for line in err.splitlines() if line.startswith("error:")], out


def _contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_resume_refuses_other_settings_in_one_line_naming_them(run_dir, capsys):
    before = _contents(run_dir)
    status, errors, _ = _mixpath(capsys, "train", run_dir, "--resume", "--epochs", 3, "--lr", 0.5)
    assert status == 2 and len(errors) == 1
    assert "epochs=3 given, 1 saved (the cosine learning-rate schedule would change length mid-run)" in errors[0]
    assert "lr=0.5 given, 0.1 saved" in errors[0]
    assert _contents(run_dir) == before


def test_resume_applies_and_records_a_setting_that_changes_nothing_trained(run_dir, capsys):
    status, errors, _ = _mixpath(capsys, "train", run_dir, "--resume", "--checkpoint-every", 5)
    assert status == 0 and not errors
    assert json.loads((run_dir / "config.json").read_text())["checkpoint_every"] == 5
    status, errors, _ = _mixpath(capsys, "train", run_dir, "--resume", "--lr", 0.1)  # the saved value: fine
    assert status == 0 and not errors


def test_resume_removes_the_temp_files_of_killed_checkpoint_writes(run_dir, tmp_path, tiny, capsys):
    stale = [run_dir / ".checkpoint.pt.abc123.tmp", run_dir / ".checkpoint.pt.x.tmp"]
    for path in stale:
        path.write_bytes(b"half a checkpoint")
    assert _mixpath(capsys, "train", run_dir, "--resume")[0] == 0
    assert not any(path.exists() for path in stale)
    folder = tmp_path / "retrain"
    data = _digits()
    arch = tiny.parse("e3:k3-e3:k3-e3:k3", 1)
    retrain_architecture(tiny, data, arch, Recipe(epochs=2, batch_size=32), folder, stop_after_epochs=1, progress=False)
    (folder / ".checkpoint.pt.dead.tmp").write_bytes(b"x")
    retrain_architecture(tiny, data, arch, Recipe(epochs=2, batch_size=32), folder, progress=False)
    assert not (folder / ".checkpoint.pt.dead.tmp").exists()


def _digits():
    from mixpath.data import load_dataset

    return load_dataset("digits", train_subset=64)


def test_a_failed_start_does_not_block_its_retry(tmp_path, capsys):
    folder = tmp_path / "run"
    status, errors, _ = _mixpath(
        capsys, "train", folder, "--space", "tiny", "--data", "fashion-mnist", "--data-dir", tmp_path / "nowhere"
    )
    assert status == 2 and len(errors) == 1 and "nowhere" in errors[0]
    assert not folder.exists()  # nothing left: not even the folder the start made
    status, errors, _ = _mixpath(capsys, "train", folder, "--resume")
    assert status == 2 and "nothing to resume" in errors[0]
    status, errors, _ = _mixpath(capsys, "train", folder, *TINY, "--batch-size", 100000)  # fails after config.json
    assert status == 2 and "exceeds the 64 training images" in errors[0]
    assert not (folder / "config.json").exists()
    assert _mixpath(capsys, "train", folder, *TINY)[0] == 0
    assert json.loads((folder / "config.json").read_text())["batch_size"] == 32


def test_a_start_killed_before_its_first_checkpoint_takes_new_settings(tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TrainConfig(space="tiny", data="digits", lr=9.0).to_json()))
    assert _mixpath(capsys, "train", folder, *TINY)[0] == 0
    assert load_checkpoint(folder / "checkpoint.pt")["config"]["lr"] == 0.1


def test_search_resume_takes_the_saved_settings_and_refuses_other_ones(run_dir, capsys):
    assert _mixpath(capsys, "search", run_dir, "--algo", "random", *SEARCH)[0] == 0
    status, errors, _ = _mixpath(capsys, "search", run_dir, "--algo", "random", "--resume", "--budget", 6)
    assert status == 0 and not errors  # population 2, not the command's default 20: the saved settings
    history = json.loads((run_dir / "search-random" / "history.json").read_text())
    assert history["config"]["budget"] == 6 and history["config"]["population"] == 2
    status, errors, _ = _mixpath(capsys, "search", run_dir, "--algo", "random", "--resume", "--population", 3)
    assert status == 2 and len(errors) == 1 and "population=2" in errors[0] and "3" in errors[0]


def test_search_and_export_replace_earlier_results_only_with_overwrite(run_dir, capsys):
    assert _mixpath(capsys, "search", run_dir, "--algo", "random", *SEARCH)[0] == 0
    results = run_dir / "search-random"
    before = _contents(results)
    status, errors, _ = _mixpath(capsys, "search", run_dir, "--algo", "random", *SEARCH, "--seed", 1)
    assert status == 2 and len(errors) == 1 and "holds an earlier search" in errors[0] and "--overwrite" in errors[0]
    assert _contents(results) == before
    assert _mixpath(capsys, "search", run_dir, "--algo", "random", *SEARCH, "--seed", 1, "--overwrite")[0] == 0
    assert json.loads((results / "history.json").read_text())["config"]["seed"] == 1

    out = run_dir / "exported"
    arch = "e3:k3-e3:k3-e3:k3"
    assert _mixpath(capsys, "export", run_dir, "--arch", arch, "--out", out, "--calibrate", "none")[0] == 0
    model = (out / "model.pt").read_bytes()
    status, errors, _ = _mixpath(capsys, "export", run_dir, "--arch", "e6:k3-e3:k3-e3:k3", "--out", out)
    assert status == 2 and len(errors) == 1 and "already holds an export" in errors[0]
    assert (out / "model.pt").read_bytes() == model
    other = ["export", run_dir, "--arch", "e6:k3-e3:k3-e3:k3", "--out", out, "--calibrate", "none", "--overwrite"]
    assert _mixpath(capsys, *other)[0] == 0
    assert torch.load(out / "model.pt", weights_only=True)["arch"] == "e6:k3-e3:k3-e3:k3"


def test_an_unsatisfiable_constraint_fails_before_the_search(run_dir, capsys):
    status, errors, _ = _mixpath(capsys, "search", run_dir, *SEARCH, "--max-flops", 0)
    assert status == 2 and len(errors) == 1 and "no architecture of tiny fits a FLOPs budget of 0" in errors[0]
    status, errors, _ = _mixpath(capsys, "search", run_dir, *SEARCH, "--max-params", 0.0001)
    assert status == 2 and "no architecture of tiny fits a limit of 0.0001 M parameters" in errors[0]
    assert not (run_dir / "search-nsga2").exists() and not (run_dir / "eval_cache.jsonl").exists()


def test_library_resume_with_other_settings_names_them(run_dir):
    saved = TrainConfig(space="tiny", data="digits", train_subset=64, batch_size=32, epochs=1)
    with pytest.raises(MixPathError, match=r"batch_size=16 given, 32 saved"):
        train_supernet(TrainConfig(**{**saved.to_json(), "batch_size": 16}), run_dir, resume=True, progress=False)


@pytest.mark.parametrize(
    ("args", "written"),
    [
        (["train", "{new}", *TINY], "config.json"),
        (["evaluate", "{run}", "--arch", "e3:k3-e3:k3-e3:k3", "--calib-size", "64"], "eval_cache.jsonl"),
        (["export", "{run}", "--arch", "e3:k3-e3:k3-e3:k3", "--calibrate", "none", "--out", "{new}"], "model.pt"),
    ],
    ids=["train", "evaluate", "export"],
)
def test_a_full_disk_is_one_line_naming_the_file(run_dir, tmp_path, monkeypatch, capsys, args, written):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("mixpath.io.os.fsync", full)  # every durable write ends in an fsync
    filled = [arg.replace("{run}", str(run_dir)).replace("{new}", str(tmp_path / "new")) for arg in args]
    status, errors, _ = _mixpath(capsys, *filled)
    assert status == 2 and len(errors) == 1, errors
    assert errors[0].startswith("error: cannot write ") and errors[0].endswith(f"{written}: No space left on device")
    assert not list(tmp_path.rglob(".*.tmp"))  # no temp file left behind


def test_pipeline_resume_refuses_other_training_settings(run_dir, capsys):
    before = _contents(run_dir)
    status, errors, _ = _mixpath(capsys, "pipeline", run_dir, "--resume", "--epochs", 3, "--device", "cpu")
    assert status == 2 and len(errors) == 1 and "epochs=3 given, 1 saved" in errors[0]
    assert _contents(run_dir) == before
