"""Image folders: scanning, ImageNet augmentation, loaders (single process and 2 gloo ranks), a training smoke run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from PIL import Image

from mixpath.data import ImageFolder, ImageTransform, image_loader, load_imagefolder, set_loader_epoch
from mixpath.data.imagefolder import IMAGENET_MEAN, IMAGENET_STD
from mixpath.errors import MixPathError
from mixpath.spaces import LayerChoice, mbconv_space
from mixpath.supernet import build_standalone

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


def test_scans_classes_in_sorted_order(folders: Path):
    data = load_imagefolder(folders, image_size=32, resize_size=36)
    assert data.classes == list(CLASSES) and data.num_classes == 3
    assert len(data.train) == 12 and len(data.val) == 6
    assert [label for _, label in data.train.samples] == [0] * 4 + [1] * 4 + [2] * 4
    (folders / "train" / "dog" / "notes.txt").write_text("not an image")
    assert len(ImageFolder(folders / "train", ImageTransform(True, 32))) == 12


def test_validation_is_a_deterministic_centre_crop(folders: Path):
    data = load_imagefolder(folders, image_size=32, resize_size=36)
    image, label = data.val[2]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32 and label == 1
    assert torch.equal(image, data.val[2][0])
    # 40 -> 36 -> centre 32 keeps columns 2..33 and rows 2..33 of the 36 x 36 image: away from the white
    # columns and the noise rows, only the class colour is left
    expected = (torch.tensor(COLOURS["dog"]) / 255.0 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    centre = image[:, 4:-4, 12:]
    torch.testing.assert_close(centre, expected.view(3, 1, 1).expand_as(centre), atol=1e-5, rtol=0)


def test_training_crops_are_random_resized_and_flipped(folders: Path):
    transform = ImageTransform(True, image_size=32)
    torch.manual_seed(0)
    boxes = [transform.crop_box(400, 300) for _ in range(500)]
    for left, top, right, bottom in boxes:
        assert 0 <= left < right <= 400 and 0 <= top < bottom <= 300
    areas = np.array([(r - left) * (b - t) for left, t, r, b in boxes]) / (400 * 300)
    ratios = np.array([(r - left) / (b - t) for left, t, r, b in boxes])
    assert areas.min() >= 0.07 and areas.max() <= 1.0 and 0.3 < np.median(areas) < 0.7
    assert ratios.min() > 0.7 and ratios.max() < 1.4
    data = ImageFolder(folders / "train", transform)
    torch.manual_seed(1)
    first = data[0][0]
    assert first.shape == (3, 32, 32)
    torch.manual_seed(1)
    assert torch.equal(data[0][0], first)  # seeded: the same crop again
    # the whole image (scale and ratio 1), so only the flip is random: the white columns move right half the time
    whole = ImageFolder(folders / "train", ImageTransform(True, image_size=32, scale=(1.0, 1.0), ratio=(1.0, 1.0)))
    images = torch.stack([whole[0][0] for _ in range(200)])
    white = (1.0 - IMAGENET_MEAN[1]) / IMAGENET_STD[1]
    left_white = (images[:, 1, :30, 0] - white).abs().max(1).values < 0.01
    right_white = (images[:, 1, :30, -1] - white).abs().max(1).values < 0.01
    assert torch.equal(left_white, ~right_white)
    assert 70 < int(left_white.sum()) < 130


def test_errors_name_the_problem(tmp_path: Path, folders: Path):
    with pytest.raises(MixPathError, match="does not exist"):
        load_imagefolder(tmp_path / "nowhere")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(MixPathError, match="no images"):
        ImageFolder(tmp_path / "empty", ImageTransform(False))
    write_folder(tmp_path / "other", 1)
    (tmp_path / "other" / "zebra").mkdir()
    with pytest.raises(MixPathError, match="zebra"):
        ImageFolder(tmp_path / "other", ImageTransform(False), classes=list(CLASSES))
    (folders / "train" / "cat" / "9.png").write_bytes(b"not a png")
    data = ImageFolder(folders / "train", ImageTransform(True, 32))
    with pytest.raises(MixPathError, match="9.png"):
        data[4]
    with pytest.raises(MixPathError, match="image_size"):
        ImageTransform(True, image_size=0)


def test_loader_batches_and_trains_a_model_a_few_steps(folders: Path):
    data = load_imagefolder(folders, image_size=32, resize_size=36)
    space = mbconv_space("rgb-tiny", "test", (3, 32, 32), 3, [8, 8, 16], [2, 1], 32, stem_stride=2)
    arch = space.parse("-".join(str(LayerChoice.of(["k3"], e=3)) for _ in space.layers), 1)
    torch.manual_seed(0)
    model = build_standalone(space, arch)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = [p.detach().clone() for p in model.parameters()]
    loader = image_loader(data.train, 4, shuffle=True, seed=0, num_workers=1, drop_last=True)
    set_loader_epoch(loader, 0)  # a no-op without torch.distributed
    losses, seen = [], []
    for _ in range(2):
        for images, labels in loader:
            assert images.shape == (4, 3, 32, 32) and labels.dtype == torch.int64
            loss = torch.nn.functional.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            seen.extend(labels.tolist())
    assert len(losses) == 6 and all(np.isfinite(losses))
    assert sorted(seen) == sorted([0, 1, 2] * 8)  # two epochs over the 12 images
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
    model.eval()
    with torch.no_grad():
        val = next(iter(image_loader(data.val, 6, shuffle=False)))
        assert model(val[0]).shape == (6, 3) and val[1].tolist() == [0, 0, 1, 1, 2, 2]


def _rank_indices(rank: int, init_file: str, root: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        data = load_imagefolder(root, image_size=32, resize_size=36)
        loader = image_loader(data.train, 2, shuffle=True, seed=0)
        set_loader_epoch(loader, 1)
        indices = list(iter(loader.sampler))
        labels = [int(y) for _, batch in loader for y in batch]
        Path(out, f"rank{rank}.json").write_text(json.dumps({"indices": indices, "labels": labels}))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_get_disjoint_shards(folders: Path, tmp_path: Path):
    mp.spawn(_rank_indices, args=(str(tmp_path / "init"), str(folders), str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert all(len(r["indices"]) == 6 and len(r["labels"]) == 6 for r in ranks)
    assert sorted(ranks[0]["indices"] + ranks[1]["indices"]) == list(range(12))
