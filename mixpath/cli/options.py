"""What several commands share: the run folder's two spellings, help texts, and the defaults the help shows.

One grammar for the run folder: every command that works on one takes it as the argument RUN, and
also as ``--run RUN``, the spelling ``train`` and ``pipeline`` had, so that older commands keep working.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import typer


def with_default(text: str, default: object) -> str:
    """``text`` with its default as click shows one, for options whose default is None in the signature (the
    value comes from elsewhere, or is no value at all)."""
    return f"{text}  [default: {default}]"


RUN_ALIAS_HELP = "The run folder, as RUN (the older spelling); give one of the two."
DEVICE_HELP = "Where to compute: auto (CUDA when present, else the CPU), cpu, cuda or cuda:N."
CALIBRATE_HELP = (
    "BN post-calibration before scoring: exact (cumulative statistics), ema (SPOS-style re-estimation) or none."
)
CALIB_SIZE_HELP = "Training images the BNs are calibrated with (exact calibration)."
CALIB_BATCHES_HELP = "Batches of 100 training images for ema re-estimation."
DATA_HELP = "Dataset: fashion-mnist, digits or cifar10."
DATA_DIR_HELP = with_default("Folder holding the dataset files.", "the standard places")
JSON_HELP = "Print the summary as JSON (machine-readable) instead of aligned lines."


def run_folder(run: Path | None, alias: Path | None, *, required: bool = True) -> Path | None:
    """The run folder given as RUN or as ``--run`` (a usage error when both are given and differ, or when a
    required one is missing); None when neither is given and it is not required."""
    if run is not None and alias is not None and run != alias:
        raise typer.BadParameter(f"two run folders given, {run} and --run {alias}; give one", param_hint="RUN")
    folder = run if run is not None else alias
    if folder is None and required:
        raise typer.BadParameter("missing; give the run folder as RUN (or --run RUN)", param_hint="RUN")
    return folder


def dataclass_defaults(module: str, name: str) -> dict[str, str]:
    """The defaults of dataclass ``name`` in the mixpath source file ``module`` (e.g. "training/config.py"),
    as the help shows them, read from the source with ``ast``.

    Why not import the class: ``TrainConfig`` and ``Recipe`` live beside torch, and importing torch takes
    seconds that ``--help`` should not spend. The commands still build the dataclass itself from the options
    given (an option left out is not passed), so the values used are the class's; these are for display, and
    a test checks that they equal the class's.
    """
    source = (Path(__file__).resolve().parents[1] / module).read_text()
    body = next(node for node in ast.parse(source).body if isinstance(node, ast.ClassDef) and node.name == name).body
    return {
        field.target.id: str(field.value.value) if isinstance(field.value, ast.Constant) else ast.unparse(field.value)
        for field in body
        if isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name) and field.value is not None
    }


TRAIN = dataclass_defaults("training/config.py", "TrainConfig")
"""``TrainConfig``'s defaults, for the help of ``train`` and ``pipeline``."""
RECIPE = dataclass_defaults("training/standalone.py", "Recipe")
"""``Recipe``'s defaults (retraining from scratch), for the help of ``retrain``."""


def given(**options: Any) -> dict[str, Any]:
    """The options the user gave (not None), to pass to a dataclass so that it fills in its own defaults."""
    return {key: value for key, value in options.items() if value is not None}
