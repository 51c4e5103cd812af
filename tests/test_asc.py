"""Acoustic scene classification: WAV reading, the log-mel front end, WAV folders (DCASE layout), the asc-s1
space with unidirectional kernels, and NSGA-II on a generated folder through the command line."""

from __future__ import annotations

import copy
import json
import random
import struct
import wave
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from mixpath.cli import app, register_commands
from mixpath.data import load_dataset, wavfolder
from mixpath.data.wavfolder import log_mel, mel_filterbank, read_wav
from mixpath.errors import MixPathError
from mixpath.evaluation import count_macs
from mixpath.kernels import branch_sum, cpu, fused_branches
from mixpath.spaces import get_space
from mixpath.supernet import build_standalone, build_supernet
from mixpath.supernet.mbconv import depthwise_branch

register_commands()
RATE = 8000
FREQUENCIES = (150, 300, 500, 800, 1200, 1700, 2400, 3200)  # classes 0-7 are tones, class 8 white noise


def _write_pcm16(path: Path, samples: np.ndarray, rate: int = RATE) -> None:
    """Mono or (frames x channels) samples in [-1, 1] as 16-bit PCM, written by Python's wave module."""
    samples = samples.reshape(len(samples), -1)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(samples.shape[1])
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(np.round(samples * 32767).astype("<i2").tobytes())


def _write_wav(path: Path, payload: bytes, tag: int, bits: int, channels: int, extensible: bool = False) -> None:
    """A WAV file written byte by byte: PCM (tag 1) or float (tag 3), optionally WAVE_FORMAT_EXTENSIBLE."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 0xFFFE if extensible else tag, channels, RATE, RATE * block, block, bits)
    if extensible:  # cbSize, valid bits, channel mask, sub-format GUID (tag first)
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", tag) + bytes(14)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"LIST" + struct.pack("<I", 3) + b"abc\0"
    body += b"data" + struct.pack("<I", len(payload)) + payload
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def make_scene_folder(root: Path, clips_per_class: int = 3, seconds: float = 0.25, seed: int = 0) -> Path:
    """Nine classes of short clips at 8 kHz (tones of eight pitches and white noise) in the DCASE layout:
    root/audio/*.wav and root/meta.csv. Three clips of 0.25 s per class: 6.75 s of audio."""
    rng = np.random.default_rng(seed)
    (root / "audio").mkdir(parents=True)
    t = np.arange(int(RATE * seconds)) / RATE
    rows = ["filename,label"]
    for c in range(9):
        for i in range(clips_per_class):
            level = rng.uniform(0.2, 0.5)
            if c < 8:
                samples = level * np.sin(2 * np.pi * FREQUENCIES[c] * t + rng.uniform(0, 2 * np.pi))
            else:
                samples = level * rng.uniform(-1, 1, len(t))
            _write_pcm16(root / "audio" / f"c{c}_{i}.wav", samples)
            rows.append(f"audio/c{c}_{i}.wav,scene{c}")
    (root / "meta.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(wavfolder.CACHE_ENV, str(tmp_path / "cache"))


@pytest.fixture
def scenes(tmp_path):
    return make_scene_folder(tmp_path / "scenes")


# --- reading WAV files ----------------------------------------------------------------------------------


def test_wav_reader_reads_every_sample_format(tmp_path):
    want = np.array([[0.0, 0.5, -0.5, 0.25], [0.125, -1.0, 0.75, 0.0]], dtype=np.float32)  # channels x frames
    _write_pcm16(tmp_path / "a.wav", want.T)
    got, rate = read_wav(tmp_path / "a.wav")
    assert rate == RATE and got.shape == (2, 4)
    np.testing.assert_allclose(got, want, atol=1 / 32767)
    interleaved = want.T.reshape(-1)
    _write_wav(tmp_path / "f.wav", interleaved.astype("<f4").tobytes(), tag=3, bits=32, channels=2, extensible=True)
    np.testing.assert_array_equal(read_wav(tmp_path / "f.wav")[0], want)
    ints = np.round(interleaved * (2**23 - 1)).astype(np.int64) % 2**24  # 24-bit two's complement
    _write_wav(tmp_path / "i.wav", b"".join(int(v).to_bytes(3, "little") for v in ints), tag=1, bits=24, channels=2)
    np.testing.assert_allclose(read_wav(tmp_path / "i.wav")[0], want, atol=2**-22)
    _write_wav(tmp_path / "u.wav", (np.round(interleaved * 127) + 128).astype(np.uint8).tobytes(), 1, 8, 2)
    np.testing.assert_allclose(read_wav(tmp_path / "u.wav")[0], want, atol=1 / 127)
    (tmp_path / "x.wav").write_bytes(b"not a wav file")
    with pytest.raises(MixPathError, match="is not a WAV file"):
        read_wav(tmp_path / "x.wav")
    _write_wav(tmp_path / "alaw.wav", bytes(8), tag=6, bits=8, channels=1)
    with pytest.raises(MixPathError, match="WAV format 6 with 8-bit samples is not supported"):
        read_wav(tmp_path / "alaw.wav")


# --- the front end -----------------------------------------------------------------------------------


def test_mel_filters_are_triangles_covering_the_band_in_order():
    bank = mel_filterbank(320, RATE, 40)
    assert bank.shape == (40, 161) and bank.min() >= 0 and bank.max() <= 1
    peaks = bank.argmax(dim=1)
    assert (peaks[1:] >= peaks[:-1]).all() and peaks[-1] > 150  # low to high, up to Nyquist
    assert (bank.sum(dim=0)[1:-1] > 0).all()  # every bin inside the band falls under some filter


@pytest.mark.parametrize("frequency", [300, 1200, 3200])
def test_a_tone_lights_the_band_of_its_pitch_at_its_level(frequency):
    t = torch.arange(RATE) / RATE
    spectrogram = log_mel(torch.sin(2 * torch.pi * frequency * t), RATE)
    assert spectrogram.shape == (40, 51)  # 1 s at a 20 ms hop, centred frames
    loudest = int(spectrogram[:, 25].argmax())
    centres = mel_filterbank(320, RATE, 40).argmax(dim=1) * (RATE / 2) / 160  # Hz of each band's peak
    assert abs(float(centres[loudest]) - frequency) <= 0.15 * frequency
    assert -9.0 < float(spectrogram[loudest, 25]) < 0.0  # a full-scale sine: about -6 dB
    quiet = log_mel(0.01 * torch.sin(2 * torch.pi * frequency * t), RATE)
    torch.testing.assert_close(quiet[loudest, 25], spectrogram[loudest, 25] - 40.0, atol=0.01, rtol=0)


# --- the folder loader -------------------------------------------------------------------------------


def test_folder_loads_as_spectrogram_images_with_a_stratified_test_split(scenes):
    data = load_dataset("wavfolder", scenes)
    assert data.input_shape == (1, 40, 13)  # 0.25 s clips
    assert data.class_names == tuple(f"scene{c}" for c in range(9))
    assert data.sizes() == {"train": 20, "val": 2, "test": 5}
    assert abs(float(data.train_x.mean())) < 1e-5  # normalised with the training split's statistics
    tone = data.train_x[data.train_y == 0][0, 0]  # scene0, 150 Hz: energy in the lowest bands only
    assert tone[:8].mean() > tone[20:].mean() + 1.0


def test_a_second_load_reads_the_cache_not_the_audio(scenes, monkeypatch):
    first = load_dataset("wavfolder", scenes)

    def no_audio(path):
        raise AssertionError(f"read {path} again")

    monkeypatch.setattr(wavfolder, "read_wav", no_audio)
    second = load_dataset("wavfolder", scenes)
    torch.testing.assert_close(second.train_x, first.train_x, rtol=0, atol=0)
    (scenes / "audio" / "c0_0.wav").write_bytes((scenes / "audio" / "c0_1.wav").read_bytes() + b"\0\0")
    with pytest.raises(AssertionError, match="read .* again"):  # a changed clip is a new key
        load_dataset("wavfolder", scenes)


def test_dcase_layout_tab_separated_meta_and_fold_1(tmp_path):
    root = tmp_path / "dcase"
    (root / "audio").mkdir(parents=True)
    (root / "evaluation_setup").mkdir()
    rng = np.random.default_rng(1)
    lines, train, test = [], [], []
    for i in range(12):
        name, label = f"audio/DevNode{i % 3}_ex{i}_1.wav", ("absence", "cooking")[i % 2]
        channels = rng.uniform(-0.3, 0.3, (RATE // 10, 4))  # four microphones, as the SINS recordings
        _write_pcm16(root / name, channels)
        line = f"{name}\t{label}\tDevNode{i % 3}_ex{i}"
        lines.append(line)
        (test if i >= 8 else train if i >= 2 else []).append(line)  # clips 0, 1 are in neither list
    (root / "meta.txt").write_text("\n".join(lines) + "\n")
    (root / "evaluation_setup" / "fold1_train.txt").write_text("\n".join(train) + "\n")
    (root / "evaluation_setup" / "fold1_evaluate.txt").write_text("\n".join(test) + "\n")
    data = load_dataset("wavfolder", root, val_size=2)
    assert data.class_names == ("absence", "cooking") and data.input_shape == (1, 40, 6)
    assert data.sizes() == {"train": 4, "val": 2, "test": 4}
    assert data.test_y.tolist() == [0, 1, 0, 1]
    (root / "evaluation_setup" / "fold1_evaluate.txt").write_text("audio/elsewhere.wav\n")
    with pytest.raises(MixPathError, match="lists 'audio/elsewhere.wav', which the labels file does not"):
        load_dataset("wavfolder", root)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda root: (root / "meta.csv").unlink(), "has no labels file: expected meta.csv or meta.txt"),
        (lambda root: (root / "audio" / "c3_1.wav").unlink(), "'audio/c3_1.wav', listed in"),
        (lambda root: (root / "meta.csv").write_text("a.wav\n"), "row 1: expected a file name and a label"),
        (lambda root: _write_pcm16(root / "audio" / "c0_0.wav", np.zeros(80), 16000), "first clip at 16000 Hz"),
    ],
)
def test_folder_mistakes_are_one_line_errors(scenes, change, message):
    change(scenes)
    with pytest.raises(MixPathError, match=message):
        load_dataset("wavfolder", scenes)


def test_wavfolder_needs_its_folder():
    with pytest.raises(MixPathError, match="--data wavfolder needs --data-dir"):
        load_dataset("wavfolder")


# --- the space: unidirectional kernels -----------------------------------------------------------------


def test_asc_space_alternates_time_and_frequency_kernels():
    space = get_space("asc-s1")
    assert space.input_shape == (1, 40, 501) and space.num_classes == 9
    assert [spec.attr("kernel_shape") for spec in space.layers] == ["1xk", "kx1"] * 4
    net = build_supernet(space, 4)
    assert net.layers[0].branches[0][3][0].kernel_size == (1, 9) and net.layers[0].branches[0][3][0].padding == (0, 4)
    assert net.layers[1].branches[1][2][0].kernel_size == (7, 1)
    x = torch.randn(2, 1, 40, 33)  # a short clip: the network pools globally
    arch = space.random_architecture(random.Random(0), 4)
    assert net(x, arch).shape == (2, 9)
    net.eval()
    torch.testing.assert_close(net.extract(arch).eval()(x), net(x, arch))

    # the same architecture with square kernels: each depthwise output costs 81 multiply-adds, not 9
    square = replace(space, name="asc-square", layers=tuple(replace(spec, attrs=()) for spec in space.layers))
    arch = space.parse("-".join(["e6:k9"] * 8), 1)
    model = build_standalone(space, arch)
    outputs = []
    for layer in model.layers:
        layer.branches[0][0].register_forward_hook(lambda module, inputs, out: outputs.append(out.numel()))
    macs = count_macs(model, space.input_shape)
    assert count_macs(build_standalone(square, arch), space.input_shape) - macs == (81 - 9) * sum(outputs)
    assert macs < 60e6


def test_non_square_kernels_take_pytorchs_path_and_train_exactly_as_the_modules():
    """The compiled depthwise kernels are square-only: for 1xk and kx1 they decline and PyTorch's
    convolution backward runs, inside the fused branch sum, in float32 and channels-last as in training."""
    torch.manual_seed(0)
    for kernel in ((1, 9), (7, 1)):
        conv = depthwise_branch(16, kernel, 1)[0]
        x = torch.randn(2, 16, 12, 12).contiguous(memory_format=torch.channels_last)
        grad = torch.randn(2, 16, 12, 12).contiguous(memory_format=torch.channels_last)
        assert cpu.weight_grad(grad, x, conv) is None
        assert cpu.input_grad(grad, conv.weight, conv) is None
    if cpu.available():  # the square kernels of the same size do run compiled
        square = depthwise_branch(16, 9, 1)[0]
        assert cpu.weight_grad(grad, x, square) is not None
    branches = nn.ModuleList(depthwise_branch(16, k, 1, "relu6") for k in ((1, 3), (1, 9), (7, 1), 5))
    branches = branches.to(memory_format=torch.channels_last)
    x = torch.randn(4, 16, 10, 10).contiguous(memory_format=torch.channels_last)
    results = []
    for fused in (True, False):
        copies = copy.deepcopy(branches)
        hidden = x.clone().requires_grad_()
        with fused_branches(fused):
            out = branch_sum(hidden, list(copies))
            out.backward(torch.linspace(-1, 1, out.numel()).view_as(out))
        results.append((out, hidden.grad, [p.grad for p in copies.parameters()]))
    (out, hgrad, pgrads), (out0, hgrad0, pgrads0) = results
    torch.testing.assert_close(out, out0, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(hgrad, hgrad0, rtol=1e-4, atol=1e-5)
    for got, want in zip(pgrads, pgrads0, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


# --- end to end ---------------------------------------------------------------------------------------


@pytest.mark.slow  # ~8 s on a loaded machine: training, a search and its resumption in one process
def test_nsga2_searches_a_generated_wav_folder_through_the_cli(scenes, tmp_path):
    runner = CliRunner()
    run = tmp_path / "run"
    data = ["--data", "wavfolder", "--data-dir", str(scenes)]
    trained = runner.invoke(app, ["train", str(run), "--space", "asc-s1", *data, "--epochs", "1", "--batch-size", "8"])
    assert trained.exit_code == 0, trained.output
    assert json.loads((run / "config.json").read_text())["data"] == "wavfolder"
    search = ["search", str(run), "--algo", "nsga2", "--objectives", "accuracy,flops", "--population", "3"]
    first = runner.invoke(app, [*search, "--budget", "3"])
    assert first.exit_code == 0, first.output
    resumed = runner.invoke(app, [*search, "--budget", "6", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    folder = run / "search-nsga2"
    evaluated = json.loads((folder / "evaluated.json").read_text())
    front = json.loads((folder / "front.json").read_text())
    assert len(evaluated) == 6 and 1 <= len(front) <= 6 and (folder / "front.png").is_file()
    flops = {e["arch"]: e["metrics"]["flops"] for e in evaluated}
    space = get_space("asc-s1")
    for entry in front:  # FLOPs are the stand-alone model's, counted at the space's 1 x 40 x 501
        model = build_standalone(space, space.parse(entry["arch"], 4))
        assert flops[entry["arch"]] == pytest.approx(count_macs(model, space.input_shape) / 1e6)
    assert "most accurate on the front" in resumed.output
