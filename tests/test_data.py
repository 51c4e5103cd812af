"""Data: IDX and CIFAR readers, datasets and splits, augmentation, batching."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mixpath.data import (
    AugmentConfig,
    augment_batch,
    dataset_names,
    iterate_batches,
    load_dataset,
    read_idx,
    split_indices,
)
from mixpath.data.fashion_mnist import SYSTEM_DIR
from mixpath.errors import MixPathError


def write_idx(path: Path, array: np.ndarray, *, compress: bool = True) -> Path:
    """Write ``array`` (uint8 or int32) in the IDX format, independently of the reader under test."""
    code = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C}[array.dtype]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def write_fake_fashion(directory: Path, n_train: int = 60, n_test: int = 20) -> Path:
    rng = np.random.default_rng(1)
    directory.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(directory / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(directory / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    return directory


def cifar_image(label: int, index: int) -> np.ndarray:
    """A 3 x 32 x 32 image whose content identifies it: one marked pixel per channel."""
    image = np.zeros((3, 32, 32), dtype=np.uint8)
    image[0, index % 32, 0] = 200
    image[1, 5, index % 32] = 100
    image[2, 31, 31] = 10 + label
    return image


def write_fake_cifar(parent: Path, per_batch: int = 4, n_test: int = 3) -> Path:
    """The cifar-10-batches-py layout with tiny batches, pickled (protocol 2) like the original files."""
    folder = parent / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    count = 0
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        labels = [(count + j) % 10 for j in range(n)]
        images = np.stack([cifar_image(label, count + j) for j, label in enumerate(labels)])
        batch = {b"data": images.reshape(n, 3072), b"labels": labels, b"batch_label": name.encode()}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        count += n
    names = [n.encode() for n in ("airplane automobile bird cat deer dog frog horse ship truck".split())]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}, protocol=2))
    return folder


# --- IDX -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [True, False])
def test_idx_round_trip(tmp_path: Path, compress: bool) -> None:
    images = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    read = read_idx(write_idx(tmp_path / "images.idx", images, compress=compress))
    assert read.dtype == np.uint8 and read.shape == (7, 5, 3)
    np.testing.assert_array_equal(read, images)
    values = np.array([-3, 0, 70000], dtype=np.int32)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "ints.idx.gz", values)), values)


def test_idx_bad_magic_names_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.gz"
    path.write_bytes(gzip.compress(b"\x01\x02\x08\x01" + struct.pack(">I", 2) + b"ab"))
    with pytest.raises(MixPathError, match="bad.gz.*magic"):
        read_idx(path)


def test_idx_truncated_names_file(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "short.idx", np.zeros((4, 3), np.uint8), compress=False)
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(MixPathError, match="short.idx.*10 bytes"):
        read_idx(path)
    gz = write_idx(tmp_path / "cut.gz", np.zeros((100, 10), np.uint8))
    gz.write_bytes(gz.read_bytes()[:15])
    with pytest.raises(MixPathError, match="cut.gz") as info:
        read_idx(gz)
    assert "\n" not in str(info.value)


# --- datasets ----------------------------------------------------------------------------------------


def test_dataset_names_and_unknown_name() -> None:
    assert dataset_names() == ["fashion-mnist", "digits", "cifar10", "wavfolder", "imagefolder"]
    with pytest.raises(MixPathError, match="unknown dataset 'mnist'.*fashion-mnist, digits, cifar10, wavfolder"):
        load_dataset("mnist")


@pytest.mark.parametrize("name", ["fashion-mnist", "cifar10"])
def test_missing_dir_names_the_directory(tmp_path: Path, name: str) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(MixPathError) as info:
        load_dataset(name, missing)
    message = str(info.value)
    assert str(missing) in message and "--data-dir" in message and "\n" not in message


def test_fashion_missing_everywhere_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIXPATH_DATA", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr("mixpath.data.fashion_mnist.SYSTEM_DIR", tmp_path / "system")
    with pytest.raises(MixPathError, match="apt-get install dataset-fashion-mnist") as info:
        load_dataset("fashion-mnist")
    assert str(tmp_path / "fashion-mnist") in str(info.value)


def test_fashion_from_env_dir_and_corrupt_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_fake_fashion(tmp_path / "fashion-mnist")
    monkeypatch.setenv("MIXPATH_DATA", str(tmp_path))
    data = load_dataset("fashion-mnist", val_size=10)
    assert data.train_x.shape == (50, 1, 28, 28) and data.val_x.shape == (10, 1, 28, 28)
    assert data.test_x.shape == (20, 1, 28, 28) and data.train_x.dtype == torch.float32
    assert data.train_y.dtype == torch.int64 and data.class_names[9] == "Ankle boot"
    assert data.augment == AugmentConfig(crop_padding=2, flip=True, cutout=0)
    labels = tmp_path / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 20) + b"\x00" * 5))
    with pytest.raises(MixPathError, match="t10k-labels-idx1-ubyte.gz"):
        load_dataset("fashion-mnist", tmp_path)


@pytest.fixture(scope="module")
def fashion() -> object:
    if not (SYSTEM_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"Fashion-MNIST is not installed in {SYSTEM_DIR}")
    return load_dataset("fashion-mnist", SYSTEM_DIR)


def test_real_fashion_mnist(fashion) -> None:
    assert fashion.train_x.shape == (54000, 1, 28, 28)
    assert fashion.val_x.shape == (6000, 1, 28, 28)
    assert fashion.test_x.shape == (10000, 1, 28, 28)
    assert fashion.num_classes == 10 and fashion.input_shape == (1, 28, 28)
    train, val = set(fashion.train_index.tolist()), set(fashion.val_index.tolist())
    assert not train & val and len(train | val) == 60000
    assert all(abs(count - 600) <= 1 for count in fashion.val_y.bincount().tolist())  # stratified
    assert abs(fashion.train_x.mean().item()) < 1e-3 and abs(fashion.train_x.std().item() - 1) < 1e-3
    assert fashion.mean[0] == pytest.approx(0.2860, abs=1e-3)


def test_split_is_seeded_stratified_and_nested() -> None:
    labels = np.repeat(np.arange(4), [40, 30, 20, 10])
    keep, held = split_indices(labels, 0.2, seed=3)
    assert len(held) == 20 and len(keep) == 80
    assert sorted(np.concatenate([keep, held]).tolist()) == list(range(100))
    assert np.bincount(labels[held]).tolist() == [8, 6, 4, 2]
    again_keep, again_held = split_indices(labels, 0.2, seed=3)
    np.testing.assert_array_equal(held, again_held)
    np.testing.assert_array_equal(keep, again_keep)
    assert set(split_indices(labels, 0.2, seed=4)[1]) != set(held)
    assert set(held) <= set(split_indices(labels, 30, seed=3)[1])
    with pytest.raises(MixPathError, match="1.5"):
        split_indices(labels, 1.5, seed=0)
    with pytest.raises(MixPathError, match="100"):
        split_indices(labels, 100, seed=0)


def test_load_split_seed_and_subset(tmp_path: Path) -> None:
    root = write_fake_fashion(tmp_path / "fm")
    a = load_dataset("fashion-mnist", root, val_size=20, split_seed=1)
    b = load_dataset("fashion-mnist", root, val_size=20, split_seed=1)
    c = load_dataset("fashion-mnist", root, val_size=20, split_seed=2)
    assert torch.equal(a.val_index, b.val_index) and torch.equal(a.val_x, b.val_x)
    assert set(a.val_index.tolist()) != set(c.val_index.tolist())
    assert a.val_y.bincount().tolist() == [2] * 10
    sub = load_dataset("fashion-mnist", root, val_size=20, split_seed=1, train_subset=20)
    assert torch.equal(sub.train_index, a.train_index[:20])
    assert all(1 <= count <= 3 for count in sub.train_y.bincount(minlength=10).tolist())
    assert sub.mean == a.mean and torch.equal(sub.val_x, a.val_x)
    with pytest.raises(MixPathError, match="train_subset=49"):
        load_dataset("fashion-mnist", root, val_size=0.2, train_subset=49)  # 60 - 12 = 48 left


def test_digits_loads_with_fixed_test_split() -> None:
    pytest.importorskip("sklearn")
    a = load_dataset("digits", split_seed=0)
    b = load_dataset("digits", split_seed=5, val_size=100)
    assert a.input_shape == (1, 8, 8) and a.num_classes == 10 and a.augment == AugmentConfig()
    assert len(a.train_y) + len(a.val_y) + len(a.test_y) == 1797
    assert len(a.test_y) == 359 and len(b.val_y) == 100
    assert not torch.equal(a.test_x, b.test_x)  # normalised with each run's training statistics
    assert torch.equal(a.test_y, b.test_y)
    assert torch.allclose(a.train_x.mean(), torch.tensor(0.0), atol=1e-4)


def test_cifar10_pickles_load(tmp_path: Path) -> None:
    folder = write_fake_cifar(tmp_path)
    for root in (tmp_path, folder):
        data = load_dataset("cifar10", root, val_size=0)
        assert data.train_x.shape == (20, 3, 32, 32) and data.test_x.shape == (3, 3, 32, 32)
        assert data.val_x.shape == (0, 3, 32, 32) and data.num_classes == 10
    assert data.class_names[0] == "airplane" and data.class_names[9] == "truck"
    assert data.augment == AugmentConfig(crop_padding=4, flip=True, cutout=16)
    assert data.test_y.tolist() == [0, 1, 2]
    for position, (index, label) in enumerate(zip(data.train_index.tolist(), data.train_y.tolist(), strict=True)):
        assert label == index % 10
        raw = torch.from_numpy(cifar_image(label, index)).float() / 255
        mean = torch.tensor(data.mean).view(3, 1, 1)
        std = torch.tensor(data.std).view(3, 1, 1)
        torch.testing.assert_close(data.train_x[position], (raw - mean) / std)


def test_cifar10_refuses_foreign_pickles_and_bad_batches(tmp_path: Path) -> None:
    folder = write_fake_cifar(tmp_path)
    (folder / "data_batch_3").write_bytes(pickle.dumps({"data": os.system}, protocol=2))
    with pytest.raises(MixPathError, match="data_batch_3.*not allowed"):
        load_dataset("cifar10", tmp_path)
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8)}, protocol=2))
    with pytest.raises(MixPathError, match="data_batch_3.*3072"):
        load_dataset("cifar10", tmp_path)
    (folder / "data_batch_3").write_bytes(b"\x80\x02}q")
    with pytest.raises(MixPathError, match="data_batch_3"):
        load_dataset("cifar10", tmp_path)


# --- augmentation ----------------------------------------------------------------------------------


def shifted(image: torch.Tensor, dy: int, dx: int, pad: int) -> torch.Tensor:
    """``image`` (C x H x W) cropped from its zero-padded version at offset (pad + dy, pad + dx)."""
    _, h, w = image.shape
    padded = F.pad(image, (pad, pad, pad, pad))
    return padded[:, pad + dy : pad + dy + h, pad + dx : pad + dx + w]


def test_augment_is_deterministic_and_leaves_input_alone() -> None:
    x = torch.randn(16, 3, 12, 12)
    before = x.clone()
    config = AugmentConfig(crop_padding=2, flip=True, cutout=4)
    a = augment_batch(x, config, torch.Generator().manual_seed(7))
    b = augment_batch(x, config, torch.Generator().manual_seed(7))
    c = augment_batch(x, config, torch.Generator().manual_seed(8))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(x, before)
    off = augment_batch(x, AugmentConfig(), torch.Generator().manual_seed(0))
    assert torch.equal(off, x) and off.data_ptr() != x.data_ptr()


def test_crop_shifts_content_within_padding() -> None:
    pad = 2
    image = torch.arange(1, 1 + 2 * 6 * 7, dtype=torch.float32).view(2, 6, 7)
    x = image.expand(64, 2, 6, 7)
    out = augment_batch(x, AugmentConfig(crop_padding=pad), torch.Generator().manual_seed(0))
    offsets = []
    for crop in out:
        matches = [
            (dy, dx)
            for dy in range(-pad, pad + 1)
            for dx in range(-pad, pad + 1)
            if torch.equal(crop, shifted(image, dy, dx, pad))
        ]
        assert len(matches) == 1
        offsets.append(matches[0])
    assert len(set(offsets)) > 10 and set(offsets) != {(0, 0)}


def test_flip_flips_about_half() -> None:
    x = torch.randn(200, 1, 4, 5)
    out = augment_batch(x, AugmentConfig(flip=True), torch.Generator().manual_seed(0))
    flipped = torch.tensor([torch.equal(o, i.flip(2)) for o, i in zip(out, x, strict=True)])
    same = torch.tensor([torch.equal(o, i) for o, i in zip(out, x, strict=True)])
    assert bool((flipped ^ same).all())
    assert 70 < int(flipped.sum()) < 130


def test_cutout_zeroes_a_clipped_square() -> None:
    side, size = 6, 16
    x = torch.ones(300, 2, size, size)
    out = augment_batch(x, AugmentConfig(cutout=side), torch.Generator().manual_seed(0))
    assert set(out.unique().tolist()) == {0.0, 1.0}
    full = 0
    for image in out:
        zero = image[0] == 0
        assert torch.equal(zero, image[1] == 0)
        rows = zero.any(1).nonzero().flatten()
        cols = zero.any(0).nonzero().flatten()
        height, width = len(rows), len(cols)
        assert 1 <= height <= side and 1 <= width <= side
        assert int(zero.sum()) == height * width  # one rectangle
        assert rows[-1] - rows[0] + 1 == height and cols[-1] - cols[0] + 1 == width
        if height < side:  # clipped: the square touches the border
            assert rows[0] == 0 or rows[-1] == size - 1
        full += height == side and width == side
    assert full > 100


def test_augment_config_validates_and_reports_enabled() -> None:
    assert not AugmentConfig().enabled and AugmentConfig(cutout=1).enabled
    with pytest.raises(MixPathError, match="crop_padding=-1"):
        AugmentConfig(crop_padding=-1)
    with pytest.raises(MixPathError, match="cutout=2.5"):
        AugmentConfig(cutout=2.5)


# --- batching ----------------------------------------------------------------------------------------


def test_iterate_batches_covers_each_sample_once() -> None:
    x = torch.arange(23, dtype=torch.float32).view(23, 1)
    y = torch.arange(23)
    ordered = list(iterate_batches(x, y, 5))
    assert [len(b) for b, _ in ordered] == [5, 5, 5, 5, 3]
    assert torch.equal(torch.cat([b for b, _ in ordered]).flatten(), x.flatten())
    shuffled = list(iterate_batches(x, y, 5, generator=torch.Generator().manual_seed(0)))
    seen = torch.cat([labels for _, labels in shuffled])
    assert sorted(seen.tolist()) == list(range(23)) and not torch.equal(seen, y)
    for xb, yb in shuffled:
        assert torch.equal(xb.flatten(), yb.float())
    again = torch.cat([yb for _, yb in iterate_batches(x, y, 5, generator=torch.Generator().manual_seed(0))])
    assert torch.equal(again, seen)


def test_iterate_batches_drop_last() -> None:
    x, y = torch.zeros(23, 2), torch.arange(23)
    sizes = [len(yb) for _, yb in iterate_batches(x, y, 5, drop_last=True)]
    assert sizes == [5, 5, 5, 5]
    shuffled = [yb for _, yb in iterate_batches(x, y, 5, generator=torch.Generator(), drop_last=True)]
    assert [len(b) for b in shuffled] == [5, 5, 5, 5] and len(set(torch.cat(shuffled).tolist())) == 20
    assert [len(yb) for _, yb in iterate_batches(x[:20], y[:20], 5, drop_last=True)] == [5, 5, 5, 5]
    with pytest.raises(MixPathError, match="batch_size=0"):
        next(iterate_batches(x, y, 0))
