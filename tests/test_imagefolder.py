"""Image folders: layouts and splits, ImageNet augmentation, the streamed batch source (workers, ranks, order)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mixpath.data import FolderSource, ImageTransform, load_folder_dataset
from mixpath.data.imagefolder import IMAGENET_MEAN, IMAGENET_STD
from mixpath.errors import MixPathError
from mixpath.training.seeding import torch_generator

CLASSES = ("cat", "dog", "emu")
COLOURS = {"cat": (200, 30, 30), "dog": (30, 200, 30), "emu": (30, 30, 200)}


def write_folder(root: Path, per_class: int, size: tuple[int, int] = (40, 40)) -> Path:
    """``root/<class>/<i>.png``: a flat colour per class, white left columns (to see flips) and noise rows."""
    rng = np.random.default_rng(0)
    for name in CLASSES:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.zeros((size[1], size[0], 3), dtype=np.uint8)
            pixels[:] = COLOURS[name]
            pixels[:, :10] = 255
            pixels[-2:] = rng.integers(0, 256, (2, size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    write_folder(tmp_path / "train", 4)
    write_folder(tmp_path / "val", 2)
    return tmp_path


def test_train_and_val_folders_give_a_held_out_test_split_and_a_seeded_validation_split(folders: Path):
    (folders / "train" / "dog" / "notes.txt").write_text("not an image")
    data = load_folder_dataset(folders, image_size=32, val_size=3, split_seed=0)
    assert data.class_names == CLASSES and data.num_classes == 3 and data.input_shape == (3, 32, 32)
    assert data.sizes() == {"train": 9, "val": 3, "test": 6}
    assert sorted(label for _, label in data.val.samples) == [0, 1, 2]  # stratified
    assert all(path.parent.parent.name == "val" for path, _ in data.test.samples)
    train = {path for path, _ in data.train.samples} | {path for path, _ in data.val.samples}
    assert len(train) == 12 and all(path.parent.parent.name == "train" for path in train)
    again = load_folder_dataset(folders, image_size=32, val_size=3, split_seed=0)
    assert again.val.samples == data.val.samples
    assert load_folder_dataset(folders, image_size=32, val_size=3, split_seed=1).val.samples != data.val.samples


def test_one_folder_is_split_into_train_validation_and_test(tmp_path: Path):
    write_folder(tmp_path / "all", 6)
    data = load_folder_dataset(tmp_path / "all", image_size=16, val_size=3, train_subset=6)
    assert data.sizes() == {"train": 6, "val": 3, "test": 3}
    assert sorted(label for _, label in data.train.samples) == [0, 0, 1, 1, 2, 2]  # a class-balanced prefix
    seen = [path for split in (data.train, data.val, data.test) for path, _ in split.samples]
    assert len(set(seen)) == len(seen)  # disjoint


def test_grayscale_folders_give_one_channel(tmp_path: Path):
    for name in CLASSES:
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.fromarray(np.full((12, 12), 40 * i, dtype=np.uint8)).save(tmp_path / name / f"{i}.png")
    data = load_folder_dataset(tmp_path, image_size=8, val_size=0)
    assert data.input_shape == (1, 8, 8) and len(data.mean) == 1
    x, y = next(data.train.batches(9))
    assert x.shape == (9, 1, 8, 8) and sorted(y.tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_validation_is_a_deterministic_centre_crop(folders: Path):
    data = load_folder_dataset(folders, image_size=32, val_size=0)
    source = FolderSource(data.test.samples, ImageTransform(False, image_size=32, resize_size=36))
    (image, *_), labels = next(source.subset(torch.tensor([2])).batches(1))
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32 and labels.tolist() == [1]
    assert torch.equal(image, next(source.batches(3))[0][2])
    # 40 -> 36 -> centre 32 keeps columns 2..33 and rows 2..33 of the 36 x 36 image: away from the white
    # columns and the noise rows, only the class colour is left
    expected = (torch.tensor(COLOURS["dog"]) / 255.0 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    centre = image[:, 4:-4, 12:]
    torch.testing.assert_close(centre, expected.view(3, 1, 1).expand_as(centre), atol=1e-5, rtol=0)


def test_training_crops_are_random_resized_and_flipped_by_the_given_generator(folders: Path):
    transform = ImageTransform(True, image_size=32)
    generator = torch.Generator().manual_seed(0)
    boxes = [transform.crop_box(400, 300, generator) for _ in range(500)]
    for left, top, right, bottom in boxes:
        assert 0 <= left < right <= 400 and 0 <= top < bottom <= 300
    areas = np.array([(r - left) * (b - t) for left, t, r, b in boxes]) / (400 * 300)
    ratios = np.array([(r - left) / (b - t) for left, t, r, b in boxes])
    assert areas.min() >= 0.07 and areas.max() <= 1.0 and 0.3 < np.median(areas) < 0.7
    assert ratios.min() > 0.7 and ratios.max() < 1.4
    image = Image.open(folders / "train" / "cat" / "0.png")
    first = transform(image, torch.Generator().manual_seed(1))
    assert first.shape == (3, 32, 32)
    assert torch.equal(transform(image, torch.Generator().manual_seed(1)), first)  # seeded: the same crop again
    assert not torch.equal(transform(image, torch.Generator().manual_seed(2)), first)
    # the whole image (scale and ratio 1), so only the flip is random: the white columns move right half the time
    whole = ImageTransform(True, image_size=32, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    images = torch.stack([whole(image, torch.Generator().manual_seed(seed)) for seed in range(200)])
    white = (1.0 - IMAGENET_MEAN[1]) / IMAGENET_STD[1]
    left_white = (images[:, 1, :30, 0] - white).abs().max(1).values < 0.01
    right_white = (images[:, 1, :30, -1] - white).abs().max(1).values < 0.01
    assert torch.equal(left_white, ~right_white)
    assert 70 < int(left_white.sum()) < 130


def _epoch(source: FolderSource, epoch: int, **kw) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return list(source.training_batches(4, epoch, functools.partial(torch_generator, 0), **kw))


def test_training_batches_are_fixed_by_seed_and_epoch_whatever_the_workers(folders: Path):
    data = load_folder_dataset(folders, image_size=16, val_size=0)
    batches = _epoch(data.train, 0)
    assert [x.shape for x, _ in batches] == [(4, 3, 16, 16)] * 3
    assert sorted(torch.cat([y for _, y in batches]).tolist()) == [0] * 4 + [1] * 4 + [2] * 4  # each image once
    with_workers = FolderSource(data.train.samples, data.train.transform, data.train.augment, workers=2)
    for (x, y), (xw, yw) in zip(batches, _epoch(with_workers, 0), strict=True):
        assert torch.equal(x, xw) and torch.equal(y, yw)
    assert not torch.equal(torch.cat([x for x, _ in batches]), torch.cat([x for x, _ in _epoch(data.train, 1)]))
    resumed = _epoch(data.train, 0, start_step=1)  # a run resumed after step 1 gets the rest of the epoch
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches[1:], resumed, strict=True))


def test_each_rank_reads_its_rows_of_the_same_global_batch(folders: Path):
    train = load_folder_dataset(folders, image_size=16, val_size=0).train
    whole = _epoch(train, 2)
    ranks = [_epoch(train, 2, rank=r, world=2) for r in range(2)]
    for step, (x, y) in enumerate(whole):
        assert torch.equal(torch.cat([ranks[0][step][0], ranks[1][step][0]]), x)
        assert torch.equal(torch.cat([ranks[0][step][1], ranks[1][step][1]]), y)


def test_errors_name_the_problem(tmp_path: Path, folders: Path):
    with pytest.raises(MixPathError, match="does not exist"):
        load_folder_dataset(tmp_path / "nowhere")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(MixPathError, match="no images"):
        load_folder_dataset(tmp_path / "empty")
    write_folder(tmp_path / "one", 1)
    (tmp_path / "one" / "zebra").mkdir()
    with pytest.raises(MixPathError, match="class folder .*zebra holds no images"):
        load_folder_dataset(tmp_path / "one", val_size=0)
    write_folder(tmp_path / "other" / "train", 2)
    write_folder(tmp_path / "other" / "val", 1)
    (tmp_path / "other" / "val" / "zebra").mkdir()
    with pytest.raises(MixPathError, match="val/ has zebra, train/ does not"):
        load_folder_dataset(tmp_path / "other")
    (folders / "train" / "cat" / "9.png").write_bytes(b"not a png")
    data = load_folder_dataset(folders, image_size=16, val_size=0)
    with pytest.raises(MixPathError, match="cannot read image .*9.png.*--skip-bad-images"):
        list(data.train.batches(4))
    with pytest.raises(MixPathError, match="image_size"):
        ImageTransform(True, image_size=0)
