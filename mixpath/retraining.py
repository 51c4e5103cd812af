"""Retraining found architectures from scratch, each into a folder that says what it holds.

One folder per architecture::

    settings.json   what the folder holds, written before training starts: space, arch, data (name and
                    split sizes), seed, recipe. A later call with other settings is refused, naming the
                    differing keys, so a finished result is never relabelled and no checkpoint is loaded
                    into a model it does not fit.
    checkpoint.pt   weights, optimizer and the per-epoch rows after every epoch: a killed call resumes here
    metrics.csv     one row per epoch: epoch, train_loss, train_acc, val_acc, lr, seconds
    curves.png      train loss and accuracy per epoch
    model.pt        the trained model (``mixpath.export``)
    result.json     arch, space, data, seed, recipe, epochs, val_acc, test_acc, flops (M multiply-adds),
                    params (M), train_seconds [, role, supernet_score]; written last, so it marks the
                    folder finished and a later call returns it without training

``retrain_architectures`` trains a list of architectures under one root, side by side on the CPU's cores,
and writes ``table.csv`` and ``table.json`` there (one row each); ``retrain_front`` does so for a search's front.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure

from mixpath.checks import check_seed, is_number
from mixpath.data import Data, load_data
from mixpath.errors import MixPathError
from mixpath.evaluation import CostModel
from mixpath.export import Preprocessing, export_model
from mixpath.io import read_json, write_csv, write_json
from mixpath.runlock import LOCK_FILE, run_lock
from mixpath.spaces import Architecture, SearchSpace, get_space
from mixpath.spaces.space_file import load_run_spaces
from mixpath.supernet import build_standalone
from mixpath.training.config import TrainConfig
from mixpath.training.recipe import Recipe
from mixpath.training.side_by_side import run_side_by_side, side_by_side_processes
from mixpath.training.standalone import init_seed, train_standalone
from mixpath.training.trainer import run_space

log = logging.getLogger("mixpath.retrain")

SETTINGS_FILE = "settings.json"
CHECKPOINT_FILE = "checkpoint.pt"
METRICS_FILE = "metrics.csv"
CURVES_FILE = "curves.png"
RESULT_FILE = "result.json"
TABLE_COLUMNS = ("name", "role", "arch", "flops", "params", "supernet_score", "val_acc", "test_acc", "train_seconds")
_NUMBER_FORMATS = {
    "seeds": "d",
    "test_acc_sd": ".2f",
    "flops": ".2f",
    "params": ".3f",
    "supernet_score": ".2f",
    "val_acc": ".2f",
    "test_acc": ".2f",
    "train_seconds": ".1f",
}


@dataclass(frozen=True)
class RetrainEntry:
    """One architecture to retrain: ``name`` is its folder under the root; ``role`` (why it was chosen,
    e.g. "most accurate") and ``supernet_score`` (its one-shot accuracy) are carried into its result so
    that the table compares the supernet's opinion with the retrained accuracy."""

    name: str
    arch: Architecture
    role: str | None = None
    supernet_score: float | None = None
    seed: int | None = None
    """Its training seed; None: the seed the whole call is given."""

    def labels(self) -> dict[str, Any]:
        return {key: value for key in ("role", "supernet_score") if (value := getattr(self, key)) is not None}


def retrain_architecture(
    space: SearchSpace,
    dataset: Data,
    arch: Architecture,
    recipe: Recipe,
    folder: Path | str,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = True,
    labels: Mapping[str, Any] | None = None,
    stop_after_epochs: int | None = None,
    progress_label: str | None = None,
) -> dict[str, Any] | None:
    """Train ``arch`` from scratch into ``folder`` (see the module docstring) and return its result.

    A finished folder with the same settings returns its result without training; a partial one resumes
    from its checkpoint. ``stop_after_epochs`` ends the call early (returning None) and ``progress_label``
    prefixes the per-epoch lines (no bar), as in ``train_standalone``.
    """
    folder = Path(folder)
    space.check_data(dataset.input_shape, dataset.num_classes, dataset.name)
    check_seed("seed", seed)
    with run_lock(folder), _claims([(folder, _settings(space, dataset, arch, recipe, seed))]):
        labels = dict(labels or {})
        if (folder / RESULT_FILE).exists():
            result = _read_result(folder / RESULT_FILE)
            log.info("%s is finished: nothing to train", folder)
            if any(result.get(key) != value for key, value in labels.items()):
                result |= labels
                write_json(folder / RESULT_FILE, result)
            return result
        init_seed(seed)
        model = build_standalone(space, arch)
        trained = train_standalone(
            model,
            dataset,
            recipe,
            seed=seed,
            device=device,
            progress=progress,
            checkpoint_path=folder / CHECKPOINT_FILE,
            stop_after_epochs=stop_after_epochs,
            validate_epochs=True,
            on_epoch=lambda history: write_csv(folder / METRICS_FILE, history),
            label=progress_label,
        )
        if trained is None:
            return None
        write_csv(folder / METRICS_FILE, trained["history"])  # a call resumed after the last epoch skipped on_epoch
        plot_curves(trained["history"], folder / CURVES_FILE, title=f"{space.format(arch)} on {dataset.name}")
        costs = CostModel(space)(arch)
        result = {
            "arch": space.format(arch),
            "space": space.name,
            "data": dataset.name,
            "seed": seed,
            "recipe": dataclasses.asdict(recipe),
            "epochs": recipe.epochs,
            "val_acc": trained["val_acc"],
            "test_acc": trained["test_acc"],
            "flops": round(costs["flops"], 4),
            "params": round(costs["params"], 5),
            "train_seconds": trained["seconds"],
            **labels,
        }
        export_model(
            model,
            space,
            arch,
            folder,
            preprocessing=Preprocessing.of(dataset),
            metrics={k: result[k] for k in ("val_acc", "test_acc")},
            export_program=True,
        )
        write_json(folder / RESULT_FILE, result)
        return result


def retrain_architectures(
    space: SearchSpace,
    dataset: Data,
    entries: Sequence[RetrainEntry],
    recipe: Recipe,
    out_root: Path | str,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = True,
    processes: int | None = None,
) -> list[dict[str, Any]]:
    """Retrain every entry into ``out_root/<name>``; return and write the table.

    On the CPU the entries train side by side, ``processes`` at a time (default: one per core;
    ``mixpath.training.side_by_side``), each process with its share of this one's threads, the most FLOPs
    first (so the last to start are the quickest); with
    ``processes=1`` or on a GPU, one after another in this process. Every folder is checked (and claimed
    with its settings) before the first one trains, so a clash is reported at once, not hours later. A call
    killed part-way and made again skips the finished folders and resumes the partial ones. ``table.csv``
    and ``table.json`` in ``out_root`` hold one row per entry, in their order: ``TABLE_COLUMNS`` that any
    result has.
    """
    out_root = Path(out_root)
    names = [entry.name for entry in entries]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise MixPathError(f"two architectures to retrain share the folder name {repeated[0]!r}")
    check_seed("seed", seed)
    seeds = [entry.seed if entry.seed is not None else seed for entry in entries]
    for entry_seed in seeds:
        check_seed("seed", entry_seed)
    claims = [
        (out_root / entry.name, _settings(space, dataset, entry.arch, recipe, entry_seed))
        for entry, entry_seed in zip(entries, seeds, strict=True)
    ]
    with run_lock(out_root), _claims(claims):

        def retrain(index: int, side_by_side: bool = False) -> dict[str, Any]:
            entry = entries[index]
            folder = out_root / entry.name
            log.info("retraining %d/%d into %s: %s", index + 1, len(entries), folder, space.format(entry.arch))
            result = retrain_architecture(
                space,
                dataset,
                entry.arch,
                recipe,
                folder,
                seed=seeds[index],
                device=device,
                progress=progress,
                labels=entry.labels(),
                progress_label=entry.name if side_by_side else None,
            )
            assert result is not None  # no stop_after_epochs given
            if side_by_side:
                log.info("%s: retrained, test acc %.2f %%", entry.name, result["test_acc"])
            return result

        processes_used = side_by_side_processes(processes, len(entries), device)
        if processes_used > 1:
            log.info("retraining %d architectures, %d at a time", len(entries), processes_used)
            task = functools.partial(retrain, side_by_side=True)
            cost = CostModel(space)
            flops = [cost(entry.arch)["flops"] for entry in entries]
            longest_first = sorted(range(len(entries)), key=lambda index: -flops[index])
            results = dict(run_side_by_side(task, longest_first, processes_used))
        else:
            results = {index: retrain(index) for index in range(len(entries))}
        rows = [
            {"name": entry.name} | {key: results[index][key] for key in TABLE_COLUMNS[1:] if key in results[index]}
            for index, entry in enumerate(entries)
        ]
        write_json(out_root / "table.json", rows)
        write_csv(out_root / "table.csv", rows)
        return rows


def front_entries(run_dir: Path | str, algo: str | None = None) -> tuple[TrainConfig, list[RetrainEntry]]:
    """The run's settings and the architectures of its search front (``RUN/search-<algo>/front.json``).

    ``algo`` picks the search when the run holds several. Each entry is named ``<position>-<digest of
    the arch>``: positions change when a resumed search changes its front, the digest keeps a folder
    tied to one architecture. ``supernet_score`` is the front's (calibrated one-shot) accuracy.
    """
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise MixPathError(f"{run_dir} is not a mixpath run folder (no config.json); train one with `mixpath train`")
    config = TrainConfig.from_json(read_json(config_path), config_path)
    found = {path.parent.name.removeprefix("search-"): path for path in sorted(run_dir.glob("search-*/front.json"))}
    if algo is None and len(found) > 1:
        raise MixPathError(
            f"{run_dir} holds the fronts of several searches ({', '.join(found)}); choose one with --algo"
        )
    algo = algo if algo is not None else next(iter(found), None)
    if algo not in found:
        have = f"it has fronts of {', '.join(found)}" if found else f"run `mixpath search {run_dir}` first"
        raise MixPathError(f"{run_dir} holds no search front{f' of {algo}' if algo else ''} ({have})")
    load_run_spaces(run_dir)
    space = get_space(config.space)
    front = read_json(found[algo])
    if not isinstance(front, list) or not all(
        isinstance(item, dict)
        and isinstance(item.get("arch"), str)
        and isinstance(item.get("metrics"), dict)
        and is_number(item["metrics"].get("accuracy"))
        for item in front
    ):
        raise MixPathError(f"{found[algo]} is not a search front written by mixpath (a list of arch, metrics)")
    items = [(space.parse(item["arch"], config.m), float(item["metrics"]["accuracy"])) for item in front]
    if not items:
        raise MixPathError(f"the front in {found[algo]} is empty: nothing to retrain")
    entries = [
        RetrainEntry(f"{position:02d}-{_digest(space.format(arch))}", arch, supernet_score=score)
        for position, (arch, score) in enumerate(items)
    ]
    return config, entries


def retrain_front(
    run_dir: Path | str,
    recipe: Recipe,
    *,
    algo: str | None = None,
    data: str | None = None,
    data_dir: str | Path | None = None,
    train_subset: int | None = None,
    seed: int = 0,
    out_root: Path | str | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
    workers: int | None = None,
    skip_bad_images: bool | None = None,
    processes: int | None = None,
) -> tuple[Path, list[dict[str, Any]]]:
    """Retrain every architecture of a run's search front into ``out_root`` (default RUN/retrain).

    The data default to the run's (its folder and validation size too, and an image folder's image size,
    ``workers`` and whether to skip unreadable images, unless given); the training split is the whole one unless
    ``train_subset`` is given (a supernet trained on a subset for speed does not limit its retraining).
    ``processes``: how many train at a time, as in ``retrain_architectures``. Returns the root folder and the
    table of ``retrain_architectures``.
    """
    with run_lock(run_dir):
        config, entries = front_entries(run_dir, algo)
        val_size = 0.1
        if data is None or data == config.data:
            data, val_size = config.data, config.val_size
            data_dir = data_dir if data_dir is not None else config.data_dir
        space = run_space(config)
        dataset = load_data(
            data,
            data_dir,
            val_size=val_size,
            split_seed=seed,
            train_subset=train_subset,
            image_size=space.input_shape[1] if data == "imagefolder" else None,
            workers=workers if workers is not None else config.workers,
            skip_bad_images=skip_bad_images if skip_bad_images is not None else config.skip_bad_images,
        )
        root = Path(out_root) if out_root is not None else Path(run_dir) / "retrain"
        rows = retrain_architectures(
            space, dataset, entries, recipe, root, seed=seed, device=device, progress=progress, processes=processes
        )
        return root, rows


def format_table(rows: Sequence[Mapping[str, Any]], headers: Mapping[str, str] | None = None) -> list[str]:
    """The rows as aligned text lines (a header first). ``headers`` chooses the columns and their titles
    (key -> title, in order); by default the ``TABLE_COLUMNS`` any row has, titled by their keys."""
    if headers is None:
        headers = {key: key for key in TABLE_COLUMNS if any(key in row for row in rows)}
    cells = [list(headers.values())] + [[_cell(key, row.get(key)) for key in headers] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(headers))]
    numeric = [key in _NUMBER_FORMATS for key in headers]
    return [
        "  ".join(
            cell.rjust(w) if right else cell.ljust(w) for cell, w, right in zip(line, widths, numeric, strict=True)
        ).rstrip()
        for line in cells
    ]


def plot_curves(history: Sequence[Mapping[str, Any]], path: Path | str, title: str = "") -> Path:
    """PNG of train loss (left) and train/validation accuracy (right) against the epoch."""
    epochs = [row["epoch"] for row in history]
    fig = Figure(figsize=(9, 3.6), dpi=110)
    loss_ax, acc_ax = fig.subplots(1, 2)
    loss_ax.plot(epochs, [row["train_loss"] for row in history], "o-", ms=3)
    loss_ax.set_ylabel("train loss (cross-entropy)")
    acc_ax.plot(epochs, [row["train_acc"] for row in history], "o-", ms=3, label="train (augmented batches)")
    if all("val_acc" in row for row in history):
        acc_ax.plot(epochs, [row["val_acc"] for row in history], "o-", ms=3, label="validation")
    acc_ax.set_ylabel("accuracy (%)")
    acc_ax.legend()
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def _settings(space: SearchSpace, dataset: Data, arch: Architecture, recipe: Recipe, seed: int) -> dict[str, Any]:
    """What decides a retraining's weights: two calls with equal settings train the same model."""
    return {
        "space": space.name,
        "arch": space.format(arch),
        "data": dataset.name,
        "data_sizes": dataset.sizes(),
        "seed": seed,
        "recipe": dataclasses.asdict(recipe),
    }


@contextlib.contextmanager
def _claims(claims: Sequence[tuple[Path, dict[str, Any]]]) -> Iterator[None]:
    """Claim every folder (``_claim_folder``) for the block. When the block fails, a folder it claimed afresh
    that holds no training yet is given back (settings.json removed, the folder too when that leaves it
    empty), so that a failed start leaves nothing behind."""
    fresh = []
    try:
        for folder, settings in claims:
            if _claim_folder(folder, settings):
                fresh.append(folder)
        yield
    except BaseException:
        for folder in fresh:
            if not (folder / CHECKPOINT_FILE).exists() and not (folder / RESULT_FILE).exists():
                (folder / SETTINGS_FILE).unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    folder.rmdir()
        raise


class FolderHoldsAnotherRetraining(MixPathError):
    """A retraining folder already trained with other settings: what a caller that names the folders itself
    (the pipeline) catches to say what the user can do about it. ``changes``: each differing setting, saved
    against asked."""

    def __init__(self, folder: Path, changes: str) -> None:
        super().__init__(f"{folder} holds another retraining ({changes}); choose another folder or delete it")
        self.folder, self.changes = folder, changes


def _claim_folder(folder: Path, settings: dict[str, Any]) -> bool:
    """Write ``settings`` into a new or empty ``folder``; accept a folder holding the same settings, or other
    settings but nothing trained yet (a call that failed before its first epoch, e.g. on a batch larger
    than the data, must not block the corrected one); refuse anything else in one line naming the
    differing keys. True when the folder held no settings before."""
    path = folder / SETTINGS_FILE
    if path.exists():
        content = read_json(path)
        if not isinstance(content, dict):
            raise MixPathError(f"{path} is not a retraining's settings (a JSON object); retrain into a new folder")
        saved, asked = _flat(content), _flat(settings)
        differing = [key for key in sorted(saved.keys() | asked.keys()) if saved.get(key) != asked.get(key)]
        trained = (folder / CHECKPOINT_FILE).exists() or (folder / RESULT_FILE).exists()
        if differing and trained:
            changes = "; ".join(f"{key}: {saved.get(key)!r} there, {asked.get(key)!r} asked" for key in differing)
            raise FolderHoldsAnotherRetraining(folder, changes)
        if not differing:
            return False
        write_json(path, settings)
        return False
    if folder.exists() and (not folder.is_dir() or any(p.name != LOCK_FILE for p in folder.iterdir())):
        raise MixPathError(f"{folder} is not an empty folder and holds no {SETTINGS_FILE}; retrain into a new folder")
    write_json(path, settings)
    return True


def _read_result(path: Path) -> dict[str, Any]:
    """A finished retraining's result.json, its numbers checked (the table formats them)."""
    result = read_json(path)
    if not isinstance(result, dict) or not all(
        is_number(result[key]) for key in _NUMBER_FORMATS if result.get(key) is not None
    ):
        raise MixPathError(f"{path} is not a retraining's result (a JSON object with numbers); delete it to retrain")
    return result


def _flat(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Nested settings as one level of dotted keys (``recipe.lr``), so a difference names the exact value."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, Mapping):
            flat |= {f"{key}.{inner}": item for inner, item in value.items()}
        else:
            flat[key] = value
    return flat


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _cell(key: str, value: Any) -> str:
    if value is None:
        return ""
    return format(value, _NUMBER_FORMATS[key]) if key in _NUMBER_FORMATS else str(value)
