"""Image folders, streamed from disk: your own images, or ImageNet, read through the batch-source interface.

Layouts (``load_folder_dataset``; class index = sorted class folder names):

- ``ROOT/train/<class>/<image>`` and ``ROOT/val/<class>/<image>`` (ImageNet's): ``val`` is held out as the test
  split (final accuracies only, as the official test sets of the in-memory datasets); the validation split that
  search scores architectures on is carved out of ``train``, seeded and stratified (``val_size``);
- ``ROOT/<class>/<image>``: a validation split and a test split of the same size are carved out of it.

Images are decoded with PIL (torchvision is not needed) one at a time by a ``DataLoader`` (``FolderSource``):
in the training process by default (``workers=0``), or in ``workers`` processes; pinned memory on CUDA.
Folders of grayscale images give 1-channel inputs, anything else RGB (3 channels). Augmentation (the standard
ImageNet recipe of the MixPath, SPOS and FairNAS training scripts):

- training: random resized crop (area 8%..100% of the image, aspect ratio 3/4..4/3, 10 tries, else a
  centre crop) resized to ``image_size`` (224) with bilinear filtering, and a horizontal flip with
  probability 1/2;
- validation, test, BN calibration: resize the shorter side to ``resize_size`` (256 for 224: the ratio
  256/224 at every size), centre crop ``image_size``.

Pixels are scaled to [0, 1] and normalised with the usual ImageNet channel mean and std (their means for
grayscale). Every training image draws its crop and flip from a generator seeded by its own seed, which
the step's generator draws for every row of the global batch: so the images of a step do not depend on
the number of workers or processes, and a seed fixes them.

An image that cannot be read (truncated, not an image) stops the run with a one-line error naming the file;
with ``skip_bad_images`` it is replaced by the next readable image of the split, logged and counted.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from mixpath.checks import check_whole_number
from mixpath.data.batches import BatchSource, Seeds
from mixpath.data.splits import split_indices
from mixpath.errors import MixPathError

log = logging.getLogger(__name__)

NAME = "imagefolder"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
GRAY_MEAN = (0.449,)  # the ImageNet statistics averaged over the channels, for grayscale folders
GRAY_STD = (0.226,)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")
"""PIL modes of single-band (grayscale) images."""
SUBSTITUTE_TRIES = 16
"""With ``skip_bad_images``: how many images from an unreadable one on are tried in its place before giving up."""


def _pil():
    """PIL's Image module, imported on first use so that mixpath imports without pillow."""
    try:
        from PIL import Image
    except ImportError as exc:
        raise MixPathError("image folders need pillow: pip install pillow") from exc
    return Image


@dataclass(frozen=True)
class ImageTransform:
    """How one image becomes a normalised C x H x W float tensor; sizes in pixels."""

    train: bool
    image_size: int = 224
    resize_size: int = 256  # validation only: shorter side before the centre crop
    scale: tuple[float, float] = (0.08, 1.0)  # random resized crop: fraction of the image area
    ratio: tuple[float, float] = (3 / 4, 4 / 3)  # random resized crop: width / height
    flip: bool = True
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    channels: int = 3  # 1: grayscale, 3: RGB

    def __post_init__(self) -> None:
        for key in ("image_size", "resize_size"):
            check_whole_number(key, getattr(self, key), meaning="pixels")
        if not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise MixPathError(f"crop scale {self.scale} must satisfy 0 < low <= high <= 1")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise MixPathError(f"crop ratio {self.ratio} must satisfy 0 < low <= high")
        if self.channels not in (1, 3) or len(self.mean) != self.channels or len(self.std) != self.channels:
            raise MixPathError(f"channels={self.channels!r} must be 1 or 3, with one mean and std per channel")

    def __call__(self, image: Any, generator: torch.Generator | None = None) -> torch.Tensor:
        """The transformed ``image`` (a PIL image) in torch's default float dtype; random draws come from
        ``generator`` (None: torch's global generator)."""
        Image = _pil()
        image = image.convert("L" if self.channels == 1 else "RGB")
        size = (self.image_size, self.image_size)
        if self.train:
            image = image.resize(size, Image.BILINEAR, box=self.crop_box(image.width, image.height, generator))
            if self.flip and float(torch.rand((), generator=generator)) < 0.5:
                image = image.transpose(Image.FLIP_LEFT_RIGHT)
        else:
            image = self._resize_shorter(image, self.resize_size)
            left = (image.width - self.image_size) // 2
            top = (image.height - self.image_size) // 2
            image = image.crop((left, top, left + self.image_size, top + self.image_size))
        pixels = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy())
        pixels = pixels[None] if pixels.dim() == 2 else pixels.permute(2, 0, 1)
        dtype = torch.get_default_dtype()
        mean = torch.tensor(self.mean, dtype=dtype).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=dtype).view(-1, 1, 1)
        return (pixels.to(dtype).div_(255.0) - mean) / std

    def crop_box(self, width: int, height: int, generator: torch.Generator | None = None) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of a random resized crop of a ``width`` x ``height`` image."""
        area = width * height
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * float(torch.empty(()).uniform_(*self.scale, generator=generator))
            aspect = math.exp(float(torch.empty(()).uniform_(*log_ratio, generator=generator)))
            w = round(math.sqrt(target * aspect))
            h = round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                top = int(torch.randint(0, height - h + 1, (), generator=generator))
                left = int(torch.randint(0, width - w + 1, (), generator=generator))
                return left, top, left + w, top + h
        aspect = width / height  # fallback: the largest centre crop within the ratio range
        if aspect < self.ratio[0]:
            w, h = width, round(width / self.ratio[0])
        elif aspect > self.ratio[1]:
            w, h = round(height * self.ratio[1]), height
        else:
            w, h = width, height
        left, top = (width - w) // 2, (height - h) // 2
        return left, top, left + w, top + h

    @staticmethod
    def _resize_shorter(image, size: int):
        Image = _pil()
        if image.width <= image.height:
            new = (size, max(1, round(image.height * size / image.width)))
        else:
            new = (max(1, round(image.width * size / image.height)), size)
        return image.resize(new, Image.BILINEAR)


LAYOUT = "ROOT/train/<class>/<image> and ROOT/val/<class>/<image>, or ROOT/<class>/<image>"


def find_classes(root: Path) -> list[str]:
    """The class folder names under ``root``, sorted (their index is the label)."""
    if not root.is_dir():
        raise MixPathError(f"image folder {root} does not exist: expected {LAYOUT}")
    classes = sorted(entry.name for entry in root.iterdir() if entry.is_dir())
    if not classes:
        raise MixPathError(f"image folder {root} has no class folders: expected {LAYOUT}")
    return classes


def scan_images(root: Path, classes: Sequence[str]) -> list[tuple[Path, int]]:
    """Every image file under ``root/<class>`` (recursively, sorted by path) with its class index. A class folder
    without images is an error: a class that can never be learned or tested is a mistake more often than not."""
    samples: list[tuple[Path, int]] = []
    empty = []
    for label, name in enumerate(classes):
        folder = root / name
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            empty.append(name)
        samples.extend((path, label) for path in files)
    if not samples:
        raise MixPathError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {root}/<class>/")
    if empty:
        more = f" and {len(empty) - 1} more" if len(empty) > 1 else ""
        raise MixPathError(f"class folder {root / empty[0]}{more} holds no images: add images or remove the folder")
    return samples


def class_folders(root: str | Path) -> list[str]:
    """The class names of the image folder ``root`` in either layout, without reading any image."""
    root = Path(root).expanduser()
    return find_classes(root / "train" if (root / "train").is_dir() else root)


def image_channels(samples: Sequence[tuple[Path, int]], per_class: int = 1, classes: int = 64) -> int:
    """1 when the first ``per_class`` images of (up to) ``classes`` classes are all grayscale, else 3 (RGB). Only
    the file headers are read; an unreadable file is left to the error that reading it will give."""
    Image = _pil()
    first: dict[int, list[Path]] = {}
    for path, label in samples:
        if len(first.get(label, ())) < per_class and (label in first or len(first) < classes):
            first.setdefault(label, []).append(path)
    modes = set()
    for paths in first.values():
        for path in paths:
            try:
                with Image.open(path) as image:
                    modes.add(image.mode)
            except (OSError, ValueError, SyntaxError, EOFError):
                continue
    return 1 if modes and modes <= set(GRAY_MODES) else 3


class _Reader(torch.utils.data.Dataset):
    """The images of a split for a DataLoader, read by key ``(index, seed)``: the plain transform for seed -1,
    else the augmentation drawn from a generator seeded by ``seed``.

    A sample is ``(image, label, problems)``: ``problems`` names the unreadable files met ("path: reason",
    tab-separated), and the label is -1 when no readable image could be returned, so that the process
    consuming the batches (not a worker, whose exceptions DataLoader wraps in its traceback) raises the
    one-line error."""

    def __init__(
        self,
        samples: Sequence[tuple[Path, int]],
        transform: ImageTransform,
        augment: ImageTransform | None,
        skip_bad: bool,
    ) -> None:
        self.samples, self.transform, self.augment, self.skip_bad = samples, transform, augment, skip_bad

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int, str]:
        index, seed = key
        Image = _pil()
        transform = self.transform if seed < 0 or self.augment is None else self.augment
        problems: list[str] = []
        for attempt in range(SUBSTITUTE_TRIES if self.skip_bad else 1):
            path, label = self.samples[(index + attempt) % len(self.samples)]
            generator = torch.Generator().manual_seed(seed) if seed >= 0 else None
            try:
                with Image.open(path) as image:
                    return transform(image, generator), label, "\t".join(problems)
            except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
                problems.append(f"{path}: {' '.join(str(exc).split()) or type(exc).__name__}")
        size = transform.image_size
        return torch.zeros(transform.channels, size, size), -1, "\t".join(problems)


class _Keys:
    """The batches of ``(index, seed)`` keys a DataLoader hands its workers: ``make()`` iterates them, ``count``
    is how many there are."""

    def __init__(self, make: Callable[[], Iterator[list[tuple[int, int]]]], count: int) -> None:
        self.make, self.count = make, count

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        return self.make()

    def __len__(self) -> int:
        return self.count


class FolderSource(BatchSource):
    """A split of an image folder, decoded and augmented per image by ``workers`` DataLoader processes (0: in
    this process). ``augment`` is the training augmentation (``training_batches`` only; None: the plain
    ``transform`` there too). ``skipped`` holds the unreadable files replaced so far (``skip_bad_images``)."""

    def __init__(
        self,
        samples: Sequence[tuple[Path, int]],
        transform: ImageTransform,
        augment: ImageTransform | None = None,
        *,
        workers: int = 0,
        skip_bad_images: bool = False,
        device: torch.device | str = "cpu",
        skipped: set[str] | None = None,
    ) -> None:
        check_whole_number("workers", workers, smallest=0, meaning="0: read images in this process")
        self.samples = list(samples)
        self.transform, self.augment = transform, augment
        self.workers, self.skip_bad_images = workers, skip_bad_images
        self.device = torch.device(device)
        self.skipped: set[str] = skipped if skipped is not None else set()
        self._reader = _Reader(self.samples, transform, augment, skip_bad_images)

    def __len__(self) -> int:
        return len(self.samples)

    def _like(self, samples: Sequence[tuple[Path, int]], augment: ImageTransform | None, device: torch.device | str):
        return FolderSource(
            samples,
            self.transform,
            augment,
            workers=self.workers,
            skip_bad_images=self.skip_bad_images,
            device=device,
            skipped=self.skipped,
        )

    def to(self, device: torch.device | str) -> FolderSource:
        return self._like(self.samples, self.augment, device)

    def training_batches(
        self, batch_size: int, epoch: int, seeds: Seeds, *, start_step: int = 0, rank: int = 0, world: int = 1
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Every row of a global batch gets its own augmentation seed, drawn from the step's generator whatever
        rank reads it; a rank reads only its rows."""
        steps, share = self.steps_per_epoch(batch_size), batch_size // world
        mine = slice(rank * share, (rank + 1) * share)

        def keys() -> Iterator[list[tuple[int, int]]]:
            order = torch.randperm(len(self), generator=seeds("order", epoch))
            for step in range(start_step, steps):
                rows = order[step * batch_size : (step + 1) * batch_size][mine]
                draws = torch.randint(0, 2**63 - 1, (batch_size,), generator=seeds("aug", epoch, step))[mine]
                yield list(zip(rows.tolist(), draws.tolist(), strict=True))

        return self._load(_Keys(keys, max(0, steps - start_step)))

    def batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        check_whole_number("batch_size", batch_size)
        starts = range(0, len(self), batch_size)

        def keys() -> Iterator[list[tuple[int, int]]]:
            for start in starts:
                yield [(i, -1) for i in range(start, min(start + batch_size, len(self)))]

        return self._load(_Keys(keys, len(starts)))

    def subset(self, index: torch.Tensor) -> FolderSource:
        return self._like([self.samples[i] for i in index.tolist()], None, self.device)

    def fingerprint_parts(self, images: str, labels: str | None = None) -> list[tuple[str, torch.Tensor]]:
        """The file paths and the transform, hashed (not the pixels: reading every image for a cache key would
        cost a pass over the split); labels as a tensor."""
        digest = hashlib.sha256(repr(self.transform).encode())
        for path, _ in self.samples:
            digest.update(str(path).encode() + b"\n")
        parts = [(images, torch.frombuffer(bytearray(digest.digest()), dtype=torch.uint8))]
        if labels is not None:
            parts.append((labels, torch.tensor([label for _, label in self.samples], dtype=torch.int64)))
        return parts

    def _load(self, keys: _Keys) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        loader = DataLoader(
            self._reader,
            batch_sampler=keys,
            num_workers=self.workers,
            pin_memory=self.device.type == "cuda",
        )
        for x, y, problems in loader:
            if any(problems):
                self._report(y, problems)
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def _report(self, labels: torch.Tensor, problems: Sequence[str]) -> None:
        """Raise the one-line error for an image that could not be read (or replaced); log each file skipped."""
        for label, problem in zip(labels.tolist(), problems, strict=True):
            if label < 0:
                first = problem.split("\t")[0]
                if self.skip_bad_images:
                    raise MixPathError(
                        f"cannot read image {first}, nor the {SUBSTITUTE_TRIES - 1} images after it: is it intact?"
                    )
                raise MixPathError(
                    f"cannot read image {first}; replace or remove the file, or pass --skip-bad-images to skip "
                    "unreadable images (each is replaced by the next readable one, logged and counted)"
                )
            for entry in filter(None, problem.split("\t")):
                path = entry.split(": ")[0]
                if path not in self.skipped:
                    self.skipped.add(path)
                    log.warning("skipped unreadable image %s (%d skipped so far)", entry, len(self.skipped))


@dataclass
class FolderDataset:
    """An image folder as ``mixpath.data.batches.Data``: three ``FolderSource`` splits sharing one class list."""

    root: Path
    train: FolderSource
    val: FolderSource
    test: FolderSource
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    name: str = NAME

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def skipped(self) -> int:
        """Unreadable images replaced so far (``skip_bad_images``); the splits share one record."""
        return len(self.train.skipped)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def load_folder_dataset(
    root: str | Path,
    *,
    image_size: int = 224,
    val_size: int | float = 0.1,
    split_seed: int = 0,
    train_subset: int | None = None,
    workers: int = 0,
    skip_bad_images: bool = False,
) -> FolderDataset:
    """The image folder ``root`` in either layout of the module docstring, as square ``image_size`` images.

    ``val_size`` (a count or a fraction, as in ``mixpath.data.load_dataset``) is split off the training images,
    stratified and seeded by ``split_seed``; in the one-folder layout a test split of the same size is split
    off the rest. ``train_subset`` keeps the first N of the seeded training order (class-balanced).
    """
    root = Path(root).expanduser()
    if (root / "train").is_dir():
        if not (root / "val").is_dir():
            raise MixPathError(f"{root} has train/ but no val/: expected {LAYOUT}")
        classes = find_classes(root / "train")
        val_classes = find_classes(root / "val")
        if classes != val_classes:
            lacking = sorted(set(classes) - set(val_classes))
            extra = sorted(set(val_classes) - set(classes))
            differences = [f"val/ lacks {', '.join(lacking[:3])}"] * bool(lacking)
            differences += [f"val/ has {', '.join(extra[:3])}, train/ does not"] * bool(extra)
            raise MixPathError(
                f"train/ and val/ of {root} have different class folders ({'; '.join(differences)}): "
                "both need one folder per class, with the same names"
            )
        pool = scan_images(root / "train", classes)
        test = scan_images(root / "val", classes)
        keep, held = split_indices(np.array([label for _, label in pool]), val_size, seed=split_seed)
        train, val = [pool[i] for i in keep], [pool[i] for i in held]
    else:
        classes = find_classes(root)
        pool = scan_images(root, classes)
        rest, held = split_indices(np.array([label for _, label in pool]), val_size, seed=split_seed)
        val = [pool[i] for i in held]
        rest_labels = np.array([pool[i][1] for i in rest])
        keep, tested = split_indices(rest_labels, len(held), seed=split_seed)
        train, test = [pool[rest[i]] for i in keep], [pool[rest[i]] for i in tested]
    if train_subset is not None:
        check_whole_number("train_subset", train_subset)
        if train_subset > len(train):
            raise MixPathError(f"train_subset={train_subset} exceeds the {len(train)} training images of {root}")
        train = train[:train_subset]
    channels = image_channels(pool)
    mean, std = (GRAY_MEAN, GRAY_STD) if channels == 1 else (IMAGENET_MEAN, IMAGENET_STD)
    resize = max(image_size, round(image_size * 256 / 224))
    plain = ImageTransform(False, image_size, resize, mean=mean, std=std, channels=channels)
    augment = ImageTransform(True, image_size, resize, mean=mean, std=std, channels=channels)
    options: dict[str, Any] = {"workers": workers, "skip_bad_images": skip_bad_images, "skipped": set()}
    data = FolderDataset(
        root=root,
        train=FolderSource(train, plain, augment, **options),
        val=FolderSource(val, plain, **options),
        test=FolderSource(test, plain, **options),
        class_names=tuple(classes),
        input_shape=(channels, image_size, image_size),
        mean=mean,
        std=std,
    )
    log.info(
        "image folder %s: %d classes, %s images, %d channel(s) at %dx%d",
        root,
        len(classes),
        data.sizes(),
        channels,
        image_size,
        image_size,
    )
    return data
