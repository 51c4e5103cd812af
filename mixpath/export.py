"""Export a found architecture as a stand-alone model a user can deploy without knowing how it was trained.

The networks learn on normalised images, ``(pixels - mean) / std`` per channel with the training split's
statistics (``mixpath.data``); fed raw pixels, an export without them scored 10.3 % instead of 64.7 %
on Fashion-MNIST. So the files a deployment runs carry the normalisation inside, and ``model.json`` says
what every file expects:

- ``model.pt``: the bare network's state dict with its space, architecture, BN policy and preprocessing, a
  plain dict ``torch.load`` reads without mixpath; ``load_exported`` rebuilds the network, which takes
  *normalised* input like mixpath's datasets hold it.
- ``model.pt2`` (``export_program=True``): a torch.export program of ``PixelModel`` (normalisation, then
  the network) taking raw pixels in [0, 1]; ``torch.export.load(path).module()(pixels)``, no mixpath needed.
- ``model.onnx`` (``export_onnx=True``; ``pip install 'mixpath[onnx]'``): the same program as ONNX, checked
  against PyTorch with onnxruntime before it is written.
- ``model.json``: input shape, pixel range, mean, std, class names, metrics, and which file is which.

Export runs the network in eval mode, where ``mixpath.kernels`` takes its plain-module path: the
fused autograd functions and compiled kernels serve training only, so the traced graph holds aten ops alone.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from mixpath.data import Data
from mixpath.errors import MixPathError
from mixpath.io import atomic_write, write_json
from mixpath.spaces import Architecture, SearchSpace, get_space
from mixpath.supernet import build_standalone

FORMAT = "mixpath-standalone-v1"
METADATA_FORMAT = "mixpath-export-v1"
PIXEL_RANGE = (0.0, 1.0)
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
ONNX_TOLERANCE = 1e-4
"""Largest |ONNX - PyTorch| logit difference accepted at export, as a fraction of the largest logit (at
least 1). ONNX Runtime's kernels sum in another order than PyTorch's, and the float32 rounding grows with
depth: measured 1e-6 (tiny), 8e-6 (fmnist-s1), 4.5e-5 (imagenet-s2 with logits up to 6), so a wrong graph
fails the check and rounding passes it."""


@dataclass(frozen=True)
class Preprocessing:
    """What a network was trained on: pixels scaled to [0, 1] (pixel / max value, 255 for 8-bit images),
    then ``(pixels - mean) / std`` per channel; and what its outputs mean (``class_names`` by logit index)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]

    @classmethod
    def of(cls, dataset: Data) -> Preprocessing:
        """The statistics ``dataset`` was normalised with, as ``mixpath.data.load_dataset`` computed them."""
        if dataset.mean is None or dataset.std is None:
            raise MixPathError(f"dataset {dataset.name!r} has no normalisation statistics to export")
        return cls(tuple(dataset.mean), tuple(dataset.std), tuple(dataset.class_names))

    def as_dict(self) -> dict[str, list]:
        """JSON- and ``torch.load(weights_only=True)``-friendly form, as model.json and model.pt hold it."""
        return {
            "pixel_range": list(PIXEL_RANGE),
            "mean": list(self.mean),
            "std": list(self.std),
            "class_names": list(self.class_names),
        }


class PixelModel(nn.Module):
    """``network((pixels - mean) / std)``: takes raw pixels in [0, 1], N x C x H x W float32. Mean and std are
    buffers, so an exported program or ONNX model carries them; the ops are the ones ``mixpath.data`` uses."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, network: nn.Module, preprocessing: Preprocessing):
        super().__init__()
        self.network = network
        shape = (1, len(preprocessing.mean), 1, 1)
        self.register_buffer("mean", torch.tensor(preprocessing.mean, dtype=torch.float32).view(shape))
        self.register_buffer("std", torch.tensor(preprocessing.std, dtype=torch.float32).view(shape))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.network((pixels - self.mean) / self.std)


def export_model(
    model: torch.nn.Module,
    space: SearchSpace,
    arch: Architecture,
    out_dir: Path | str,
    *,
    preprocessing: Preprocessing | None = None,
    bn_policy: str = "shadow",
    metrics: dict[str, Any] | None = None,
    export_program: bool = False,
    export_onnx: bool = False,
) -> list[Path]:
    """Write the export into ``out_dir`` (see the module doc); returns the written paths, model.pt first.

    Without ``preprocessing`` only model.pt is written, as before preprocessing was exported; a program or
    ONNX model without its normalisation is the trap this module closes, so asking for one is an error.
    """
    out_dir = Path(out_dir)
    if preprocessing is None and (export_program or export_onnx):
        raise MixPathError("a program or ONNX export needs the training data's preprocessing (mean, std, classes)")
    if export_onnx:
        require_onnx()
    model = model.cpu().eval()
    bundle = {
        "format": FORMAT,
        "space": space.name,
        "arch": space.format(arch),
        "bn_policy": bn_policy,
        "input_shape": list(space.input_shape),
        "metrics": metrics or {},
        "preprocessing": None if preprocessing is None else preprocessing.as_dict(),
        "state_dict": model.state_dict(),
    }
    atomic_write(out_dir / "model.pt", lambda handle: torch.save(bundle, handle))
    if preprocessing is None:
        return [out_dir / "model.pt"]
    files: dict[str, dict[str, Any]] = {
        "model.pt": {"content": "state dict of the bare network: mixpath.export.load_exported", "input": "normalised"}
    }
    if export_program or export_onnx:
        pixel_model = PixelModel(model, preprocessing).eval()
        files |= _write_programs(pixel_model, space.input_shape, out_dir, export_program, export_onnx)
    write_json(out_dir / "model.json", _metadata(space, arch, bn_policy, preprocessing, metrics or {}, files))
    return [out_dir / name for name in files] + [out_dir / "model.json"]


def _metadata(
    space: SearchSpace,
    arch: Architecture,
    bn_policy: str,
    preprocessing: Preprocessing,
    metrics: dict[str, Any],
    files: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """model.json: everything a deployment must know; "input" of a file is "pixels" (float32 N x C x H x W in
    pixel_range) or "normalised" ((pixels - mean) / std per channel)."""
    return {
        "format": METADATA_FORMAT,
        "space": space.name,
        "arch": space.format(arch),
        "bn_policy": bn_policy,
        "input_shape": list(space.input_shape),
        "layout": "NCHW",
        "dtype": "float32",
        **preprocessing.as_dict(),
        "metrics": metrics,
        "files": files,
    }


def _write_programs(
    model: PixelModel, input_shape: tuple[int, ...], out_dir: Path, program_file: bool, onnx_file: bool
) -> dict[str, dict[str, Any]]:
    """model.pt2 and/or model.onnx of ``model`` from one torch.export trace (any batch size); their
    model.json entries."""
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(model, (torch.rand(2, *input_shape),), dynamic_shapes=({0: batch},))
    files: dict[str, dict[str, Any]] = {}
    if program_file:
        atomic_write(out_dir / "model.pt2", lambda handle: torch.export.save(program, handle))
        files["model.pt2"] = {"content": "torch.export program: torch.export.load(path).module()", "input": "pixels"}
    if onnx_file:
        onnx_bytes, opset, difference = _to_onnx(program, model, input_shape)
        atomic_write(out_dir / "model.onnx", lambda handle: handle.write(onnx_bytes))
        files["model.onnx"] = {
            "content": f"ONNX (opset {opset}), input 'pixels', output 'logits'",
            "input": "pixels",
            "max_abs_difference_to_pytorch": difference,
        }
    return files


def require_onnx() -> None:
    """Fail in one line, before any work, when the packages of the ``onnx`` extra are missing."""
    missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise MixPathError(f"ONNX export needs {', '.join(missing)}: pip install 'mixpath[onnx]'")


def _to_onnx(
    program: torch.export.ExportedProgram, model: nn.Module, input_shape: tuple[int, ...]
) -> tuple[bytes, int, float]:
    """The program as ONNX bytes (torch's dynamo exporter translating the very graph model.pt2 holds), its
    opset, and its largest logit difference to ``model`` on random pixels, checked with onnxruntime."""
    import onnxruntime

    onnx_program = torch.onnx.export(
        program, dynamo=True, verbose=False, input_names=["pixels"], output_names=["logits"]
    )
    if onnx_program is None:  # only the legacy exporter (dynamo=False) returns none
        raise MixPathError("torch.onnx.export returned no ONNX program")
    batch_axis: Any = cast(Any, onnx_program.model.graph.inputs[0].shape)[0]  # the symbolic batch dimension
    onnx_program.rename_axes({batch_axis: "batch"})
    onnx_bytes = onnx_program.model_proto.SerializeToString()
    pixels = torch.rand(4, *input_shape, generator=torch.Generator().manual_seed(0))
    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(["logits"], {"pixels": pixels.numpy()})[0])
    with torch.no_grad():
        want = model(pixels)
    difference = (got - want).abs().max().item()
    if not difference <= ONNX_TOLERANCE * max(1.0, want.abs().max().item()):
        raise MixPathError(f"the ONNX model's logits differ from PyTorch's by {difference:.3g}; not written")
    return onnx_bytes, onnx_program.model.opset_imports[""], difference


def load_exported(path: Path | str) -> tuple[torch.nn.Module, SearchSpace, Architecture]:
    """Rebuild an exported bare network (eval mode; normalised input) with its space and architecture."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    try:
        bundle = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise MixPathError(f"no exported model at {path}") from None
    except Exception as err:
        raise MixPathError(f"{path} is corrupt or not a mixpath export ({type(err).__name__})") from None
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise MixPathError(f"{path} is not a mixpath export (expected format {FORMAT})")
    space = get_space(bundle["space"])
    arch = space.parse(bundle["arch"], space.max_m())
    model = build_standalone(space, arch, bundle["bn_policy"])
    model.load_state_dict(bundle["state_dict"])
    return model.eval(), space, arch
