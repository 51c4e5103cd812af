"""Folders of WAV files with a labels file (the DCASE layout), as log-mel spectrograms held in memory.

Layout (``--data wavfolder --data-dir ROOT``)::

    ROOT/audio/*.wav                      the clips (any sub-folders)
    ROOT/meta.csv  or  ROOT/meta.txt      one line per clip: file name, label[, anything else]
    ROOT/evaluation_setup/fold1_train.txt, fold1_evaluate.txt      optional: DCASE's fold 1

A file name is relative to ROOT (DCASE writes ``audio/x.wav``) or to ROOT/audio. Fields are separated by a
tab (DCASE) or a comma; a first line naming the columns (``filename,label``) is skipped, further columns
(DCASE2018 task 5's session) are ignored. The test split is DCASE's fold 1 when ROOT has its setup files
(``fold1_train.txt`` for training, ``fold1_evaluate.txt`` for test; clips in neither are left out), else a
fixed stratified 20 % of the clips (seed 0, the same for every run). The run's validation split is carved
out of the training clips as for every dataset (``mixpath.data.datasets``).

The front end is PyTorch's own (torchaudio has no CPU wheel matching this torch): each clip is averaged to
mono, cut into Hann windows of ``window`` seconds every ``hop`` seconds (``torch.stft``, centred, zero padded),
the power spectrum, divided by the squared window sum so that a full-scale sine peaks near -6 dB, is mapped
onto ``n_mels`` triangular mel bands (HTK mel scale, 0 Hz to Nyquist, peak 1) and taken in dB. The defaults,
40 bands, 40 ms windows, 20 ms hop, are DCASE2018 task 5's baseline features: a 10 s clip gives 40 x 501.
Spectrograms are images of 1 x bands x frames (height = frequency, width = time): ``asc-s1``'s 1 x k
kernels run along time, its k x 1 kernels along frequency. Clips shorter than the longest are padded with
silence at the end. All clips must share one sample rate (no resampling here).

Values are stored as 8-bit images like every other dataset (``RawImages``): dB clipped to
[``FLOOR_DB``, ``CEILING_DB``] = [-100, 20] in 255 steps of 0.47 dB, far finer than the differences between
scenes; normalisation then uses the training split's mean and std. An exported model (``mixpath export``)
takes ``scaled_log_mel(...)``: the same values on [0, 1].

Computed spectrograms are cached in ``$MIXPATH_WAV_CACHE`` when set, else ``$XDG_CACHE_HOME/mixpath/wavfolder/``
(default ``~/.cache``), one file per folder and front end, keyed by
the front end's settings and every clip's name, size and modification time, so a search or retraining of a
run does not read the audio again. A DCASE2018 task 5 development set (72,984 clips of 10 s) takes 1.5 GB
there and ~5.8 GB as float32 tensors in memory; ``--train-subset`` trains on fewer clips.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import struct
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from mixpath.data.augment import AugmentConfig
from mixpath.data.raw import RawImages
from mixpath.data.splits import split_indices
from mixpath.errors import MixPathError

NAME = "wavfolder"
AUGMENT = AugmentConfig()  # crops and flips of a spectrogram would move frequencies and reverse time
META_FILES = ("meta.csv", "meta.txt")
FOLD_FILES = ("evaluation_setup/fold1_train.txt", "evaluation_setup/fold1_evaluate.txt")
TEST_FRACTION = 0.2
TEST_SEED = 0
FLOOR_DB, CEILING_DB = -100.0, 20.0
_HEADER_NAMES = {"filename", "file", "file_name", "path"}
CACHE_ENV = "MIXPATH_WAV_CACHE"
_CACHE_VERSION = 1


@dataclass(frozen=True)
class LogMel:
    """The spectrogram front end's settings: mel bands, window and hop in seconds (see the module doc)."""

    n_mels: int = 40
    window: float = 0.04
    hop: float = 0.02

    def frames(self, rate: int) -> tuple[int, int]:
        """(window, hop) in samples at ``rate`` Hz."""
        return max(2, round(self.window * rate)), max(1, round(self.hop * rate))


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """The samples (channels x frames, float32 in [-1, 1]) and sample rate (Hz) of a WAV file: PCM of 8, 16,
    24 or 32 bits or IEEE float of 32 or 64 bits, plain or WAVE_FORMAT_EXTENSIBLE (as multi-channel files are)."""
    data = Path(path).read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise MixPathError(f"{path} is not a WAV file (no RIFF/WAVE header)")
    chunks: dict[bytes, bytes] = {}
    pos = 12
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        chunks.setdefault(data[pos : pos + 4], data[pos + 8 : pos + 8 + size])
        pos += 8 + size + (size & 1)
    fmt, samples = chunks.get(b"fmt "), chunks.get(b"data")
    if fmt is None or samples is None or len(fmt) < 16:
        raise MixPathError(f"{path} is not a complete WAV file (no 'fmt ' or 'data' chunk)")
    tag, channels, rate = struct.unpack_from("<HHI", fmt)
    bits = struct.unpack_from("<H", fmt, 14)[0]
    if tag == 0xFFFE and len(fmt) >= 26:  # extensible: the sub-format GUID starts with the real tag
        tag = struct.unpack_from("<H", fmt, 24)[0]
    width = bits // 8
    if channels < 1 or width < 1:
        raise MixPathError(f"{path}: a WAV file with {channels} channels of {bits} bits")
    raw = samples[: len(samples) - len(samples) % (width * channels)]
    if tag == 1 and bits == 8:
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif tag == 1 and bits in (16, 32):
        x = np.frombuffer(raw, f"<i{width}").astype(np.float32) / 2.0 ** (bits - 1)
    elif tag == 1 and bits == 24:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(value >= 1 << 23, value - (1 << 24), value) / 2.0**23).astype(np.float32)
    elif tag == 3 and bits in (32, 64):
        x = np.frombuffer(raw, f"<f{width}").astype(np.float32)
    else:
        raise MixPathError(
            f"{path}: WAV format {tag} with {bits}-bit samples is not supported (PCM 8/16/24/32-bit, float 32/64-bit)"
        )
    return x.reshape(-1, channels).T, int(rate)


def mel_filterbank(n_fft: int, rate: int, n_mels: int) -> torch.Tensor:
    """Triangular filters (n_mels x n_fft // 2 + 1) on the HTK mel scale from 0 Hz to rate / 2, peak 1."""

    def mel(hz: float) -> float:
        return 2595.0 * math.log10(1.0 + hz / 700.0)

    edges = 700.0 * (10.0 ** (torch.linspace(0.0, mel(rate / 2), n_mels + 2, dtype=torch.float64) / 2595.0) - 1.0)
    bins = torch.linspace(0.0, rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising, falling = (bins - lower) / (centre - lower), (upper - bins) / (upper - centre)
    return torch.minimum(rising, falling).clamp(min=0.0).to(torch.float32)


def log_mel(audio: torch.Tensor, rate: int, front_end: LogMel = LogMel()) -> torch.Tensor:
    """Log-mel energies in dB (n_mels x frames) of a mono clip ``audio`` (float samples in [-1, 1])."""
    window_length, hop = front_end.frames(rate)
    window = torch.hann_window(window_length, periodic=True, dtype=torch.float32)
    spectrum = torch.stft(
        audio.to(torch.float32),
        n_fft=window_length,
        hop_length=hop,
        window=window,
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    power = spectrum.abs().square() / window.sum().square()
    energies = mel_filterbank(window_length, rate, front_end.n_mels) @ power
    return 10.0 * torch.log10(energies + 1e-10)


def scaled_log_mel(audio: torch.Tensor, rate: int, front_end: LogMel = LogMel()) -> torch.Tensor:
    """``log_mel`` clipped to [FLOOR_DB, CEILING_DB] and scaled to [0, 1]: what the loader's 8-bit values
    divided by 255 approximate, and what an exported model (which normalises itself) takes as input."""
    decibels = log_mel(audio, rate, front_end).clamp(FLOOR_DB, CEILING_DB)
    return (decibels - FLOOR_DB) / (CEILING_DB - FLOOR_DB)


def read_meta(root: Path) -> list[tuple[str, str]]:
    """(file name, label) per clip from ROOT/meta.csv or ROOT/meta.txt, in file order."""
    path = next((root / name for name in META_FILES if (root / name).is_file()), None)
    if path is None:
        raise MixPathError(f"{root} has no labels file: expected {' or '.join(META_FILES)} (file name, label)")
    rows = _rows(path)
    if rows and rows[0][0].strip().lower() in _HEADER_NAMES:
        rows = rows[1:]
    clips = []
    for number, row in enumerate(rows, 1):
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise MixPathError(f"{path}, row {number}: expected a file name and a label, got {row!r}")
        clips.append((row[0].strip(), row[1].strip()))
    if not clips:
        raise MixPathError(f"{path} lists no clips")
    return clips


def _rows(path: Path) -> list[list[str]]:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    delimiter = "\t" if lines and "\t" in lines[0] else ","
    return list(csv.reader(lines, delimiter=delimiter))


def class_names(root: str | Path | None) -> tuple[str, ...]:
    """The labels of a WAV folder, sorted: class i is ``class_names(root)[i]``."""
    return tuple(sorted({label for _, label in read_meta(_root(root))}))


def load_wavfolder(root: str | Path | None, front_end: LogMel = LogMel()) -> RawImages:
    """Every clip of the folder as an 8-bit log-mel image (N x 1 x n_mels x frames), with its splits."""
    root = _root(root)
    clips = read_meta(root)
    paths = [_audio_path(root, name) for name, _ in clips]
    names = class_names(root)
    labels = np.array([names.index(label) for _, label in clips], dtype=np.int64)
    train, test = _splits(root, [name for name, _ in clips], labels)
    images = _cached_spectrograms(paths, front_end)
    return RawImages(images[train], labels[train], images[test], labels[test], names, 255.0)


def _root(root: str | Path | None) -> Path:
    if root is None:
        raise MixPathError("--data wavfolder needs --data-dir: a folder with audio/*.wav and meta.csv")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise MixPathError(f"WAV folder {path} does not exist")
    return path


def _audio_path(root: Path, name: str) -> Path:
    for path in (root / name, root / "audio" / name):
        if path.is_file():
            return path
    raise MixPathError(f"{name!r}, listed in {root}'s labels file, is neither in {root} nor in {root / 'audio'}")


def _splits(root: Path, names: list[str], labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(training, test) clip indices: DCASE's fold 1 when its setup files exist, else a seeded 20 %."""
    if not all((root / name).is_file() for name in FOLD_FILES):
        return split_indices(labels, TEST_FRACTION, seed=TEST_SEED)
    index = {name: i for i, name in enumerate(names)}
    splits = []
    for name in FOLD_FILES:
        listed = [row[0].strip() for row in _rows(root / name) if row and row[0].strip()]
        unknown = [clip for clip in listed if clip not in index]
        if unknown:
            raise MixPathError(f"{root / name} lists {unknown[0]!r}, which the labels file does not")
        splits.append(np.array([index[clip] for clip in listed], dtype=np.int64))
    return splits[0], splits[1]


def _spectrogram(path: Path, rate: int | None, front_end: LogMel) -> tuple[np.ndarray, int]:
    """One clip as 8-bit log-mel values (n_mels x frames) and its sample rate."""
    samples, clip_rate = read_wav(path)
    if rate is not None and clip_rate != rate:
        raise MixPathError(f"{path} is sampled at {clip_rate} Hz, the folder's first clip at {rate} Hz")
    scaled = scaled_log_mel(torch.from_numpy(samples.mean(axis=0)), clip_rate, front_end)
    return torch.round(scaled * 255.0).to(torch.uint8).numpy(), clip_rate


def _cached_spectrograms(paths: list[Path], front_end: LogMel) -> np.ndarray:
    """N x 1 x n_mels x frames uint8 for ``paths``, from the cache when it holds them."""
    cache = _cache_path(paths, front_end)
    if cache.is_file():
        try:
            return np.load(cache)
        except (OSError, ValueError):
            cache.unlink(missing_ok=True)  # torn or corrupt: compute again
    rate = None
    spectrograms = []
    for path in paths:
        values, rate = _spectrogram(path, rate, front_end)
        spectrograms.append(values)
    frames = max(s.shape[1] for s in spectrograms)
    images = np.zeros((len(paths), 1, front_end.n_mels, frames), dtype=np.uint8)  # 0 = FLOOR_DB: silence
    for image, values in zip(images, spectrograms, strict=True):
        image[0, :, : values.shape[1]] = values
    _save(cache, images)
    return images


def _cache_path(paths: list[Path], front_end: LogMel) -> Path:
    files = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in paths]
    text = json.dumps({"version": _CACHE_VERSION, "front_end": asdict(front_end), "files": files})
    root = (
        os.environ.get(CACHE_ENV) or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mixpath" / NAME
    )
    return Path(root) / f"{hashlib.sha256(text.encode()).hexdigest()[:24]}.npy"


def _save(path: Path, images: np.ndarray) -> None:
    """Write the cache file whole or not at all (temp file, then rename); a cache that cannot be written
    costs only the next load's time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, images)
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if not isinstance(err, OSError):
            raise
