"""Exports a user can deploy: model.pt2 and model.onnx take raw pixels in [0, 1] and normalise inside,
model.json says what every file expects, and the loading examples of docs/export.md run as written."""

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import mixpath.cli.search_commands  # noqa: F401  (registers the export command on the app)
from mixpath import export
from mixpath.cli import app
from mixpath.data import load_dataset
from mixpath.data.digits import load_digits_images
from mixpath.errors import MixPathError
from mixpath.evaluation import calibrate_bn
from mixpath.export import Preprocessing, export_model, load_exported
from mixpath.spaces import get_space
from mixpath.supernet import build_supernet
from mixpath.training import TrainConfig, train_supernet

ARCH = "e6:k3+k5-e3:k3-e6:k5"
HAS_ONNX = all(importlib.util.find_spec(name) for name in export.ONNX_PACKAGES)
# ONNX Runtime sums convolutions in another order than PyTorch: float32 rounding, measured 1e-6 to 2e-6 on
# tiny models' logits. 1e-4 leaves room for other CPUs' kernels and still fails a wrong graph by far.
ONNX_ATOL = 1e-4
DOCS = Path(__file__).resolve().parent.parent / "docs" / "export.md"


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", train_subset=320)


@pytest.fixture(scope="module")
def network(digits):
    """The tiny space's subnet with BN statistics of digits, so its logits are not those of a blank net."""
    space = get_space("tiny")
    torch.manual_seed(0)
    sub = build_supernet(space, 4).extract(space.parse(ARCH, 4))
    calibrate_bn(sub, None, digits.train_x)
    return sub.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory, network, digits):
    """An export in ROOT/runs/demo/export, the folder docs/export.md loads from; with ONNX when installed."""
    folder = tmp_path_factory.mktemp("deploy") / "runs" / "demo" / "export"
    space = get_space("tiny")
    export_model(
        network,
        space,
        space.parse(ARCH, 4),
        folder,
        preprocessing=Preprocessing.of(digits),
        metrics={"val_acc": 50.0, "test_acc": 48.5},
        export_program=True,
        export_onnx=HAS_ONNX,
    )
    return folder


def _raw_val_pixels(digits) -> torch.Tensor:
    """The validation images as a camera would give them: the raw 0..16 digits scaled to [0, 1]."""
    raw = load_digits_images().train_x[digits.val_index.numpy()]
    return torch.from_numpy(raw).float() / 16.0


def test_program_on_raw_pixels_gives_the_networks_logits_on_normalised_data(exported, network, digits):
    program = torch.export.load(exported / "model.pt2").module()
    with torch.no_grad():
        got, want = program(_raw_val_pixels(digits)), network(digits.val_x)
    torch.testing.assert_close(got, want)  # the same float32 ops as mixpath.data: rounding only
    top_two = want.topk(2, dim=1).values
    clear = top_two[:, 0] - top_two[:, 1] > 1e-4  # rounding cannot swap classes further apart than this
    assert torch.equal(got.argmax(1)[clear], want.argmax(1)[clear]) and clear.float().mean() > 0.9


def test_model_json_says_what_each_file_expects(exported, digits):
    meta = json.loads((exported / "model.json").read_text())
    assert meta["format"] == "mixpath-export-v1" and meta["space"] == "tiny" and meta["arch"] == ARCH
    assert meta["input_shape"] == [1, 8, 8] and meta["layout"] == "NCHW" and meta["dtype"] == "float32"
    assert meta["pixel_range"] == [0.0, 1.0]
    assert meta["mean"] == list(digits.mean) and meta["std"] == list(digits.std)
    assert meta["class_names"] == [str(d) for d in range(10)]
    assert meta["metrics"] == {"val_acc": 50.0, "test_acc": 48.5}
    files = meta["files"]
    assert files["model.pt"]["input"] == "normalised" and files["model.pt2"]["input"] == "pixels"
    assert sorted(files) == sorted(["model.pt", "model.pt2"] + (["model.onnx"] if HAS_ONNX else []))
    assert all((exported / name).is_file() for name in files)
    # model.pt keeps the bare network for mixpath, and its preprocessing for anyone
    bundle = torch.load(exported / "model.pt", weights_only=True)
    assert bundle["preprocessing"] == {k: meta[k] for k in ("pixel_range", "mean", "std", "class_names")}
    assert str(load_exported(exported)[2]) == ARCH


def test_onnx_model_matches_pytorch_on_raw_pixels_for_any_batch(exported, network, digits):
    onnxruntime = pytest.importorskip("onnxruntime")
    session = onnxruntime.InferenceSession(str(exported / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["pixels"] and session.get_inputs()[0].shape[0] == "batch"
    for pixels in (_raw_val_pixels(digits), _raw_val_pixels(digits)[:3]):
        got = torch.from_numpy(session.run(["logits"], {"pixels": pixels.numpy()})[0])
        with torch.no_grad():
            want = network((pixels - digits.mean[0]) / digits.std[0])
        torch.testing.assert_close(got, want, atol=ONNX_ATOL, rtol=0)
    checked = json.loads((exported / "model.json").read_text())["files"]["model.onnx"]
    assert checked["input"] == "pixels" and checked["max_abs_difference_to_pytorch"] <= ONNX_ATOL


def _docs_blocks() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    assert len(blocks) == 3, "docs/export.md: plain PyTorch, ONNX Runtime, mixpath"
    return blocks


def _run_docs_blocks(folder: Path, monkeypatch, which: tuple[int, ...]) -> tuple[dict, torch.Tensor]:
    """Run the given ```python blocks of docs/export.md in order, in one namespace, from the folder holding
    runs/demo/export, on a random 8-bit image.png; returns the namespace and the image as 1 x 1 x 8 x 8 pixels."""
    monkeypatch.chdir(folder.parents[2])
    image = np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)
    Image.fromarray(image, mode="L").save("image.png")
    namespace: dict = {}
    for index in which:
        exec(_docs_blocks()[index], namespace)
    return namespace, torch.from_numpy(image).float()[None, None] / 255.0


def test_docs_plain_pytorch_example_needs_no_mixpath_and_normalises(exported, network, digits, monkeypatch):
    assert "mixpath" not in _docs_blocks()[0]
    ran, pixels = _run_docs_blocks(exported, monkeypatch, (0, 2))
    with torch.no_grad():
        want = network((pixels - digits.mean[0]) / digits.std[0]).softmax(1)
    torch.testing.assert_close(ran["probs"], want)
    torch.testing.assert_close(ran["mixpath_probs"], want)


def test_docs_onnx_runtime_example_agrees_with_pytorch(exported, monkeypatch):
    pytest.importorskip("onnxruntime")
    assert "mixpath" not in _docs_blocks()[1]
    ran, _ = _run_docs_blocks(exported, monkeypatch, (0, 1))
    torch.testing.assert_close(ran["onnx_probs"], ran["probs"], atol=ONNX_ATOL, rtol=0)


def test_export_without_preprocessing_writes_only_model_pt_and_refuses_a_program(tmp_path, network):
    space = get_space("tiny")
    arch = space.parse(ARCH, 4)
    with pytest.raises(MixPathError, match="needs the training data's preprocessing"):
        export_model(network, space, arch, tmp_path, export_program=True)
    assert export_model(network, space, arch, tmp_path) == [tmp_path / "model.pt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]
    assert torch.load(tmp_path / "model.pt", weights_only=True)["preprocessing"] is None


def test_onnx_without_its_packages_is_a_one_line_error_before_anything_is_written(tmp_path, network, monkeypatch):
    monkeypatch.setattr(export, "ONNX_PACKAGES", ("torch", "no_such_onnx_package"))
    space = get_space("tiny")
    with pytest.raises(MixPathError, match=r"^ONNX export needs no_such_onnx_package: pip install 'mixpath\[onnx\]'$"):
        preprocessing = Preprocessing((0.0,), (1.0,), tuple("abcdefghij"))
        export_model(network, space, space.parse(ARCH, 4), tmp_path, preprocessing=preprocessing, export_onnx=True)
    assert not any(tmp_path.iterdir())


def test_cli_export_writes_the_runs_preprocessing_and_passes_onnx_on(tmp_path, digits, monkeypatch):
    run = tmp_path / "run"
    config = TrainConfig(space="tiny", data="digits", epochs=1, batch_size=32, train_subset=64, eval_archs=0)
    train_supernet(config, run, progress=False)
    runner = CliRunner()
    result = runner.invoke(app, ["export", str(run), "--arch", ARCH, "--calibrate", "none", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    meta = json.loads((run / "export" / "model.json").read_text())
    assert meta["mean"] == list(digits.mean) and meta["class_names"] == list(digits.class_names)
    assert set(meta["metrics"]) >= {"accuracy", "flops", "params"}
    monkeypatch.setattr(export, "ONNX_PACKAGES", ("no_such_onnx_package",))
    result = runner.invoke(app, ["export", str(run), "--arch", ARCH, "--onnx", "--out", str(tmp_path / "onnx")])
    assert isinstance(result.exception, MixPathError) and "no_such_onnx_package" in str(result.exception)
