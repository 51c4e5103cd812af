"""Export a found architecture as a stand-alone model a user can take away.

``model.pt`` holds the architecture string, its space, the BN policy and the state dict: a plain dict
that ``torch.load`` reads without mixpath; ``load_exported`` rebuilds the nn.Module with mixpath.
``export_program=True`` also writes ``model.pt2``, a torch.export program that runs with plain PyTorch
(``torch.export.load(path).module()(x)``), no mixpath needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mixpath.errors import MixPathError
from mixpath.io import atomic_write
from mixpath.spaces import Architecture, SearchSpace, get_space
from mixpath.supernet import build_standalone

FORMAT = "mixpath-standalone-v1"


def export_model(
    model: torch.nn.Module,
    space: SearchSpace,
    arch: Architecture,
    out_dir: Path | str,
    *,
    bn_policy: str = "shadow",
    metrics: dict[str, Any] | None = None,
    export_program: bool = False,
) -> list[Path]:
    """Write ``model.pt`` (and optionally ``model.pt2``) into ``out_dir``; returns the written paths."""
    out_dir = Path(out_dir)
    model = model.cpu().eval()
    bundle = {
        "format": FORMAT,
        "space": space.name,
        "arch": space.format(arch),
        "bn_policy": bn_policy,
        "input_shape": list(space.input_shape),
        "metrics": metrics or {},
        "state_dict": model.state_dict(),
    }
    written = [out_dir / "model.pt"]
    atomic_write(written[0], lambda handle: torch.save(bundle, handle))
    if export_program:
        example = torch.zeros(2, *space.input_shape)
        batch = torch.export.Dim("batch", min=1)
        program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
        written.append(out_dir / "model.pt2")
        atomic_write(written[1], lambda handle: torch.export.save(program, handle))
    return written


def load_exported(path: Path | str) -> tuple[torch.nn.Module, SearchSpace, Architecture]:
    """Rebuild an exported model (eval mode) with its space and architecture."""
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
