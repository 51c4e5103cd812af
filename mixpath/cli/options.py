"""What several commands share: the run folder's two spellings, the options they declare alike (one function
each, returning the ``typer.Option``: typer wants every command's parameters in its own signature), help texts,
and the defaults the help shows.

One grammar for the run folder: every command that works on one takes it as the argument RUN, and
also as ``--run RUN``, the spelling ``train`` and ``pipeline`` had, so that older commands keep working.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import typer

if TYPE_CHECKING:  # the class lives beside torch, which --help does not import
    from mixpath.evaluation import CalibrationSettings


def with_default(text: str, default: object) -> str:
    """``text`` with its default as click shows one, for options whose default is None in the signature (the
    value comes from elsewhere, or is no value at all)."""
    return f"{text}  [default: {default}]"


def option_with_default(text: str, default: object) -> Any:
    """An option whose value, when not given, comes from elsewhere (a dataclass, the run, the space): None in
    the signature, ``default`` in its help."""
    return typer.Option(None, help=with_default(text, default))


CALIBRATE_HELP = (
    "BN post-calibration before scoring: exact (cumulative statistics), ema (SPOS-style re-estimation) or none."
)
CALIB_SIZE_HELP = "Training images the BNs are calibrated with (exact calibration)."
CALIB_BATCHES_HELP = "Batches of 100 training images for ema re-estimation."
DATA_HELP = (
    "Dataset: fashion-mnist, digits, cifar10, or imagefolder: your own images, streamed from --data-dir DIR "
    "(DIR/train/<class>/ and DIR/val/<class>/, or DIR/<class>/ split seeded)."
)
LR_HELP = "Peak learning rate of SGD (cosine schedule to 0)."


def run_argument(text: str = "A trained run folder.") -> Any:
    """RUN: the run folder a command works on, also given as ``--run`` (``run_alias_option``)."""
    return typer.Argument(None, metavar="RUN", help=text)


def run_alias_option(*more_names: str) -> Any:
    """``--run``: RUN's older spelling (``more_names``: other spellings a command kept)."""
    return typer.Option(
        None, "--run", *more_names, help="The run folder, as RUN (the older spelling); give one of the two."
    )


def device_option() -> Any:
    return typer.Option("auto", help="Where to compute: auto (CUDA when present, else the CPU), cpu, cuda or cuda:N.")


def space_option(default: object) -> Any:
    """``--space``: a registered search space (``default``: the one used when none is given)."""
    return option_with_default("Search space (see `mixpath spaces`).", default)


def data_option(default: object) -> Any:
    """``--data``: the dataset (``default``: the one used when none is given)."""
    return option_with_default(DATA_HELP, default)


def data_dir_option() -> Any:
    return option_with_default(
        "Folder holding the dataset files (imagefolder: the image folder).", "the standard places"
    )


def train_subset_option() -> Any:
    return option_with_default("Train on only this many training images.", "all")


def lr_option(default: object) -> Any:
    """``--lr`` of a recipe whose dataclass fills it in (``default``: its value)."""
    return option_with_default(LR_HELP, default)


def benchmark_file_option() -> Any:
    return option_with_default("nb101: path of nasbench_only108.tfrecord.", "none")


def json_option() -> Any:
    return typer.Option(False, "--json", help="Print the summary as JSON (machine-readable) instead of aligned lines.")


@overload
def run_folder(run: Path | None, alias: Path | None, *, required: Literal[True] = True) -> Path: ...


@overload
def run_folder(run: Path | None, alias: Path | None, *, required: bool) -> Path | None: ...


def run_folder(run: Path | None, alias: Path | None, *, required: bool = True) -> Path | None:
    """The run folder given as RUN or as ``--run`` (a usage error when both are given and differ, or when a
    required one is missing); None when neither is given and it is not required. A folder's space file
    (``RUN/space.py``) is run, so that the command finds a space declared in one."""
    if run is not None and alias is not None and run != alias:
        raise typer.BadParameter(f"two run folders given, {run} and --run {alias}; give one", param_hint="RUN")
    folder = run if run is not None else alias
    if folder is None and required:
        raise typer.BadParameter("missing; give the run folder as RUN (or --run RUN)", param_hint="RUN")
    if folder is not None:
        from mixpath.spaces.space_file import load_run_spaces

        load_run_spaces(folder)  # a run of a space declared in a file finds it in its copy, RUN/space.py
    return folder


SPACE_FILE_HELP = with_default(
    "A Python file that declares search spaces (register_space); --space picks one, else its only one. A run "
    "keeps a copy (RUN/space.py), so later commands on it need no flag.",
    "none",
)


def space_file_option() -> Any:
    """``--space-file``: a Python file that declares search spaces (``mixpath.spaces.space_file``)."""
    return typer.Option(None, "--space-file", help=SPACE_FILE_HELP)


def space_to_use(space: str | None, space_file: Path | None) -> str | None:
    """The ``--space`` to use: as given, after running ``--space-file`` (which must declare it), or the
    file's only space."""
    if space_file is None:
        return space
    from mixpath.spaces.space_file import space_from_file

    return space_from_file(space_file, space)


def dataclass_defaults(module: str, name: str) -> dict[str, str]:
    """The defaults of dataclass ``name`` in the mixpath source file ``module`` (e.g. "training/config.py"),
    as the help shows them, read from the source with ``ast``; those of a base class imported from another
    mixpath module first, overridden by the class's own.

    Why not import the class: ``TrainConfig``, ``Recipe`` and ``CalibrationSettings`` live beside torch, and
    ``--help`` should not wait for torch to import. The commands still build the dataclass
    itself from the options given (an option left out is not passed), so the values used are the class's;
    these are for display, and a test checks that they equal the class's.
    """
    tree = ast.parse((Path(__file__).resolve().parents[1] / module).read_text())
    cls = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == name)
    defaults: dict[str, str] = {}
    for base in (ast.unparse(base) for base in cls.bases):
        base_module = _source_of(tree, base)
        if base_module is not None:
            defaults |= dataclass_defaults(base_module, base)
    return defaults | {
        field.target.id: str(field.value.value) if isinstance(field.value, ast.Constant) else ast.unparse(field.value)
        for field in cls.body
        if isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name) and field.value is not None
    }


def _source_of(tree: ast.Module, name: str) -> str | None:
    """The source file, relative to the package, of a mixpath module that ``tree`` imports ``name`` from."""
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mixpath."):
            if any(alias.name == name for alias in node.names):
                return (node.module or "").removeprefix("mixpath.").replace(".", "/") + ".py"
    return None


TRAIN = dataclass_defaults("training/config.py", "TrainConfig")
"""``TrainConfig``'s defaults, for the help of ``train`` and ``pipeline``."""
RECIPE = dataclass_defaults("training/recipe.py", "Recipe")
"""``Recipe``'s defaults (retraining from scratch), for the help of ``retrain``."""
CALIBRATION = dataclass_defaults("evaluation/calibration.py", "CalibrationSettings")
"""``CalibrationSettings``' defaults, for the help of every command that scores with a supernet."""


def calibrate_option(note: str = "") -> Any:
    """``--calibrate``: the BN post-calibration mode (``note`` is added to its help)."""
    return option_with_default(CALIBRATE_HELP + note, CALIBRATION["mode"])


def calib_size_option() -> Any:
    return option_with_default(CALIB_SIZE_HELP, CALIBRATION["size"])


def image_size_option(default: str = "the space's input size") -> Any:
    """``--image-size``: the side of the square images an image folder is read at."""
    return option_with_default("--data imagefolder: images of this many pixels a side.", default)


def workers_option() -> Any:
    """``--workers``: DataLoader processes decoding an image folder."""
    return option_with_default("--data imagefolder: processes decoding images (0: the main one).", TRAIN["workers"])


def processes_option() -> Any:
    """``--processes``: architectures trained from scratch at a time on the CPU, each in its own process."""
    return option_with_default("Architectures trained at a time on the CPU, each in its own process.", "one per core")


def skip_bad_images_option() -> Any:
    return typer.Option(
        False,
        "--skip-bad-images",
        help="--data imagefolder: replace an unreadable image by the next readable one (logged and counted) "
        "instead of stopping with an error naming it.",
    )


def calib_batches_option() -> Any:
    return option_with_default(CALIB_BATCHES_HELP, CALIBRATION["batches"])


def calibration_settings(
    calibrate: str | None = None, calib_size: int | None = None, calib_batches: int | None = None
) -> CalibrationSettings:
    """The calibration the options given ask for, ``CalibrationSettings``' own defaults for the others."""
    from mixpath.evaluation import CalibrationSettings

    return CalibrationSettings(**given(mode=calibrate, size=calib_size, batches=calib_batches))


def given(**options: Any) -> dict[str, Any]:
    """The options the user gave (not None), to pass to a dataclass so that it fills in its own defaults."""
    return {key: value for key, value in options.items() if value is not None}
