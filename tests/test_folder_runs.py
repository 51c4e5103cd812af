"""Your own images: train -> search -> retrain on a generated image folder through the command line, 1 process
against 2 gloo processes, a run killed mid-epoch, and bad data (one ``error:`` line, exit status 2)."""

from __future__ import annotations

import dataclasses
import os
import re
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from PIL import Image

from mixpath import distributed
from mixpath.cli import run as mixpath
from mixpath.data import load_folder_dataset
from mixpath.errors import MixPathError
from mixpath.io import read_json
from mixpath.spaces import get_space
from mixpath.training import TrainConfig, load_run, train_supernet
from mixpath.training.checkpoint import load_checkpoint
from mixpath.training.trainer import CHECKPOINT_FILE

CLASSES = ("ant", "bee", "cow")
SPACE_FILE = """from mixpath.spaces import mbconv_space, register_space

register_space(mbconv_space("folder-rgb", "3x16x16, 3 classes", (3, 16, 16), 3, [8, 8, 16], [2, 1], 32, stem_stride=2))
"""
exec(SPACE_FILE, {})  # the space file's space, here too: for the API tests and the forked ranks
WORLD = 2


def write_images(root: Path, per_class: int, classes: tuple[str, ...] = CLASSES, size: int = 20) -> Path:
    """``root/<class>/<i>.png``: noisy colour images, one hue per class, so that a few steps learn something."""
    rng = np.random.default_rng(len(classes) * 100 + per_class)
    for index, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        colour = np.roll([220, 40, 40], index)
        for i in range(per_class):
            noise = rng.integers(-50, 50, (size, size, 3))
            Image.fromarray(np.clip(colour + noise, 0, 255).astype(np.uint8)).save(root / name / f"{i}.png")
    return root


@pytest.fixture
def images(tmp_path: Path) -> Path:
    write_images(tmp_path / "images" / "train", 8)
    write_images(tmp_path / "images" / "val", 2)
    return tmp_path / "images"


def run_cli(capsys, *args: object) -> tuple[int, str]:
    """``mixpath ARGS`` in this process: the exit status and the ``error:`` lines it printed."""
    status = mixpath([str(a) for a in args], fast_runtime=False)
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    return status, "\n".join(errors)


def _config(root: Path, **kw) -> TrainConfig:
    base = dict(space="folder-rgb", data="imagefolder", data_dir=str(root), epochs=2, batch_size=6, m=2)
    return TrainConfig(**{**base, "val_size": 3, "eval_archs": 1, "workers": 0, **kw})


@pytest.mark.slow
def test_train_search_retrain_and_groundtruth_on_a_folder_through_the_command_line(images, tmp_path, capsys):
    space_file = tmp_path / "space.py"
    space_file.write_text(SPACE_FILE)
    run = tmp_path / "run"
    folder = ["--data", "imagefolder", "--data-dir", images]
    train = ["train", run, "--space-file", space_file, "--space", "folder-rgb", *folder, "--device", "cpu"]
    assert run_cli(capsys, *train, "--epochs", "2", "--batch-size", "6", "--m", "2", "--workers", "1") == (0, "")
    saved = read_json(run / "config.json")
    assert (saved["data"], saved["workers"], saved["image_size"]) == ("imagefolder", 1, None)
    search = ["search", run, "--budget", "4", "--population", "2", "--calib-size", "12", "--device", "cpu"]
    assert run_cli(capsys, *search) == (0, "")
    assert run_cli(capsys, "evaluate", run, "--arch", "e3:k3-e6:k5", "--device", "cpu") == (0, "")
    assert run_cli(capsys, "retrain", run, "--epochs", "1", "--batch-size", "6", "--device", "cpu") == (0, "")
    table = read_json(run / "retrain" / "table.json")
    assert table and all(0 <= row["test_acc"] <= 100 for row in table)
    model = read_json(run / "retrain" / table[0]["name"] / "model.json")
    assert model["class_names"] == list(CLASSES) and model["input_shape"] == [3, 16, 16]
    out = tmp_path / "gt.csv"
    gt = ["groundtruth", "--out", out, "--space-file", space_file, "--space", "folder-rgb", *folder, "--archs", "1"]
    gt += ["--epochs", "1", "--batch-size", "6", "--image-size", "12", "--device", "cpu"]
    assert run_cli(capsys, *gt) == (0, "")
    assert len(out.read_text().splitlines()) == 2  # header and the architecture


def test_image_size_resizes_a_space_that_pools_globally(images, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", run, "--space", "folder-rgb", "--data", "imagefolder", "--data-dir", images, "--epochs", "1"]
    args += ["--batch-size", "6", "--image-size", "24", "--workers", "0", "--device", "cpu"]
    assert run_cli(capsys, *args) == (0, "")
    trained = load_run(run, "cpu")
    assert trained.space.input_shape == (3, 24, 24) and trained.dataset.input_shape == (3, 24, 24)
    space = get_space("folder-rgb")
    fixed = dataclasses.replace(space, name="fixed-16", skeleton={**space.skeleton, "fixed_input_size": True})
    with pytest.raises(MixPathError, match="takes 16x16 images only .*--image-size 16"):
        fixed.with_input_size(24)


def test_a_run_killed_mid_epoch_resumes_to_the_uninterrupted_weights(images, tmp_path):
    data = load_folder_dataset(images, image_size=16, val_size=3)  # 21 training images: 3 steps of 6 an epoch
    whole = train_supernet(_config(images), tmp_path / "whole", dataset=data, progress=False, device="cpu")
    train_supernet(_config(images), tmp_path / "cut", dataset=data, progress=False, device="cpu", stop_after_steps=4)
    cut = load_checkpoint(tmp_path / "cut" / CHECKPOINT_FILE)
    assert (cut["epoch"], cut["step"]) == (1, 1)  # killed in the middle of epoch 2
    with_workers = load_folder_dataset(images, image_size=16, val_size=3, workers=1)  # workers change nothing
    resumed = train_supernet(None, tmp_path / "cut", resume=True, dataset=with_workers, progress=False, device="cpu")
    assert resumed.supernet is not None and whole.supernet is not None
    weights = resumed.supernet.state_dict()
    for name, value in whole.supernet.state_dict().items():
        assert torch.equal(value, weights[name]), name
    assert [row["train_loss"] for row in resumed.metrics] == [row["train_loss"] for row in whole.metrics]


# ---------------------------------------------------------------- 1 process against 2 gloo processes


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _entry(rank: int, port: int, root: Path, out: Path) -> None:
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    distributed.setup("cpu", timeout_minutes=1.0)
    try:
        weights = _train_float64(root, out / "ranks", micro_batches=1)
        torch.save(weights, out / f"rank{rank}.pt")
    finally:
        distributed.shutdown()


def _train_float64(root: Path, run_dir: Path, micro_batches: int) -> dict[str, torch.Tensor]:
    """Images and weights in float64, where 2 ranks equal 1 process to rounding (float32 rounding differences
    grow over steps; see tests/test_distributed.py)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # the supernet's weights, and the images the folder source decodes
    try:
        data = load_folder_dataset(root, image_size=16, val_size=3, workers=1)
        config = _config(root, micro_batches=micro_batches)
        result = train_supernet(config, run_dir, dataset=data, progress=False, device="cpu", stop_after_steps=4)
        assert result.supernet is not None
        return {name: p.detach().clone() for name, p in result.supernet.named_parameters()}
    finally:
        torch.set_default_dtype(before)


@pytest.mark.slow
def test_two_ranks_train_on_a_folder_what_one_process_trains_on_the_same_global_batch(images, tmp_path):
    mp.start_processes(_entry, args=(_free_port(), images, tmp_path), nprocs=WORLD, join=True, start_method="fork")
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    single = _train_float64(images, tmp_path / "single", micro_batches=WORLD)  # the ranks' BN batches, in 1 process
    for name, value in single.items():
        assert value.dtype == torch.float64 and torch.equal(ranks[0][name], ranks[1][name]), name
        torch.testing.assert_close(ranks[0][name], value, rtol=0, atol=1e-12, msg=name)


# ---------------------------------------------------------------- bad data


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def test_an_unreadable_image_stops_the_run_naming_it_or_is_skipped_and_counted(images, tmp_path, capsys, caplog):
    for name in ("0.png", "1.png", "2.png", "3.png"):  # some land in the training split whatever the seed
        _truncate(images / "train" / "bee" / name)
    train = ["train", "--space", "folder-rgb", "--data", "imagefolder", "--data-dir", images, "--epochs", "1"]
    train += ["--batch-size", "6", "--workers", "1", "--device", "cpu"]
    status, error = run_cli(capsys, *train, "--run", tmp_path / "strict")
    assert status == 2 and "cannot read image" in error and "bee" in error and "--skip-bad-images" in error
    assert len(error.splitlines()) == 1 and "Traceback" not in error
    assert not (tmp_path / "strict" / "config.json").exists()  # stopped before its first checkpoint: no run
    assert run_cli(capsys, *train, "--run", tmp_path / "strict", "--skip-bad-images") == (0, "")
    skipped = [r.getMessage() for r in caplog.records if "skipped unreadable image" in r.getMessage()]
    assert skipped and all("bee" in message for message in skipped) and "skipped so far" in skipped[-1]


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("empty class", "class folder .*train/cow holds no images"),
        ("no images", "no images .* found under"),
        ("other classes", "train/ and val/ of .* have different class folders \\(val/ lacks cow\\)"),
        ("four classes", "space 'folder-rgb' classifies 3 classes, data 'imagefolder' has 4: .*num_classes=4"),
        ("grayscale", "space 'folder-rgb' takes 3-channel images, data 'imagefolder' has 1 channels"),
        ("no folder given", "--data imagefolder needs --data-dir"),
    ],
)
def test_bad_folders_are_one_line_errors(tmp_path, capsys, layout, message):
    root = tmp_path / "images"
    write_images(root / "train", 2)
    write_images(root / "val", 1)
    if layout == "empty class":
        for path in (root / "train" / "cow").iterdir():
            path.unlink()
    elif layout == "no images":
        for path in root.rglob("*.png"):
            path.unlink()
    elif layout == "other classes":
        for path in (root / "val" / "cow").iterdir():
            path.unlink()
        (root / "val" / "cow").rmdir()
    elif layout == "four classes":
        write_images(root / "train", 2, ("dog",))
        write_images(root / "val", 1, ("dog",))
    elif layout == "grayscale":
        for path in root.rglob("*.png"):
            Image.open(path).convert("L").save(path)
    folder = [] if layout == "no folder given" else ["--data-dir", root]
    args = ["train", tmp_path / "run", "--space", "folder-rgb", "--data", "imagefolder", *folder, "--workers", "0"]
    status, error = run_cli(capsys, *args, "--batch-size", "2", "--device", "cpu")
    assert status == 2 and len(error.splitlines()) == 1, error
    assert re.search(message, error), error
    assert not (tmp_path / "run" / "config.json").exists()  # a failed start leaves no run behind
