"""ImageNet-style image folders, streamed from disk: ``root/<class>/<image>``, one folder per class.

ImageNet does not fit in memory like the datasets of :mod:`mixpath.data.datasets`, so images are read
and augmented one at a time in a ``torch.utils.data.Dataset`` (with PIL; torchvision is not needed),
batched by a ``DataLoader`` whose worker processes do the decoding. Under ``torchrun`` the loader
shards the images over the ranks with a ``DistributedSampler``.

Augmentation (the standard ImageNet recipe of the MixPath, SPOS and FairNAS training scripts):

- training: random resized crop (area 8%..100% of the image, aspect ratio 3/4..4/3, 10 tries, else a
  centre crop) resized to ``image_size`` (224) with bilinear filtering, and a horizontal flip with
  probability 1/2;
- validation: resize the shorter side to ``resize_size`` (256), centre crop ``image_size`` (224).

Pixels are scaled to [0, 1] and normalised with the usual ImageNet channel mean and std. Random numbers
come from torch's global generator: in worker processes the DataLoader seeds it from the loader's
``generator`` (so a seed fixes the crops), with ``num_workers=0`` it is the main process's generator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler

from mixpath.errors import MixPathError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


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

    def __post_init__(self) -> None:
        for key in ("image_size", "resize_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise MixPathError(f"{key}={value!r} must be an int >= 1 (pixels)")
        if not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise MixPathError(f"crop scale {self.scale} must satisfy 0 < low <= high <= 1")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise MixPathError(f"crop ratio {self.ratio} must satisfy 0 < low <= high")

    def __call__(self, image) -> torch.Tensor:
        Image = _pil()
        image = image.convert("RGB")
        size = (self.image_size, self.image_size)
        if self.train:
            image = image.resize(size, Image.BILINEAR, box=self.crop_box(image.width, image.height))
            if self.flip and float(torch.rand(())) < 0.5:
                image = image.transpose(Image.FLIP_LEFT_RIGHT)
        else:
            image = self._resize_shorter(image, self.resize_size)
            left = (image.width - self.image_size) // 2
            top = (image.height - self.image_size) // 2
            image = image.crop((left, top, left + self.image_size, top + self.image_size))
        pixels = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)
        mean = torch.tensor(self.mean).view(-1, 1, 1)
        std = torch.tensor(self.std).view(-1, 1, 1)
        return (pixels.float().div_(255.0) - mean) / std

    def crop_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of a random resized crop of a ``width`` x ``height`` image."""
        area = width * height
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * float(torch.empty(()).uniform_(*self.scale))
            aspect = math.exp(float(torch.empty(()).uniform_(*log_ratio)))
            w = round(math.sqrt(target * aspect))
            h = round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                top = int(torch.randint(0, height - h + 1, ()))
                left = int(torch.randint(0, width - w + 1, ()))
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


def find_classes(root: Path) -> list[str]:
    """The class folder names under ``root``, sorted (their index is the label)."""
    if not root.is_dir():
        raise MixPathError(f"image folder {root} does not exist: expected {root}/<class>/<image> files")
    classes = sorted(entry.name for entry in root.iterdir() if entry.is_dir())
    if not classes:
        raise MixPathError(f"image folder {root} has no class folders: expected {root}/<class>/<image> files")
    return classes


def scan_images(root: Path, classes: Sequence[str]) -> list[tuple[Path, int]]:
    """Every image file under ``root/<class>`` (recursively, sorted by path) with its class index."""
    samples: list[tuple[Path, int]] = []
    for label, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            continue
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        samples.extend((path, label) for path in files)
    if not samples:
        raise MixPathError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {root}/<class>/")
    return samples


class ImageFolder(torch.utils.data.Dataset):
    """Images of ``root/<class>/...`` as (normalised C x H x W tensor, class index) pairs.

    ``classes`` fixes the class order (e.g. a validation folder takes the training folder's classes,
    and may lack some); by default it is the sorted folder names.
    """

    def __init__(self, root: str | Path, transform: ImageTransform, classes: Sequence[str] | None = None):
        self.root = Path(root).expanduser()
        self.classes = list(classes) if classes is not None else find_classes(self.root)
        if classes is not None:
            unknown = sorted(set(find_classes(self.root)) - set(self.classes))
            if unknown:
                raise MixPathError(f"{self.root} has class folders the training set lacks: {', '.join(unknown[:5])}")
        self.samples = scan_images(self.root, self.classes)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        Image = _pil()
        try:
            with Image.open(path) as image:
                return self.transform(image), label
        except (OSError, ValueError) as exc:
            raise MixPathError(f"cannot read image {path}: {exc}") from exc


@dataclass
class ImageFolderSplits:
    """Training and validation image folders sharing one class list."""

    train: ImageFolder
    val: ImageFolder

    @property
    def classes(self) -> list[str]:
        return self.train.classes

    @property
    def num_classes(self) -> int:
        return len(self.train.classes)


def load_imagefolder(
    root: str | Path, *, image_size: int = 224, resize_size: int = 256, train_dir: str = "train", val_dir: str = "val"
) -> ImageFolderSplits:
    """``root/train`` and ``root/val`` (the ImageNet layout, validation images sorted into class folders)."""
    root = Path(root).expanduser()
    train = ImageFolder(root / train_dir, ImageTransform(True, image_size, resize_size))
    val = ImageFolder(root / val_dir, ImageTransform(False, image_size, resize_size), classes=train.classes)
    return ImageFolderSplits(train, val)


def image_loader(
    dataset: torch.utils.data.Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
) -> DataLoader:
    """A DataLoader over ``dataset``; sharded over the ranks when torch.distributed is initialised.

    Shuffling is seeded by ``seed`` (and, distributed, by the epoch: call ``set_loader_epoch`` at the
    start of every epoch so that each epoch draws a new order, the same on every rank).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise MixPathError(f"batch_size={batch_size!r} must be an int >= 1")
    generator = torch.Generator().manual_seed(seed)
    sampler: DistributedSampler | None = None
    if dist.is_available() and dist.is_initialized():
        sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=torch.cuda.is_available(),
        drop_last=drop_last,
        generator=generator,
        persistent_workers=num_workers > 0,
    )


def set_loader_epoch(loader: DataLoader, epoch: int) -> None:
    """Tell a distributed loader's sampler the epoch (its shuffle order depends on it); else do nothing."""
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)
