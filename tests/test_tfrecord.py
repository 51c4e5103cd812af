"""The NAS-Bench-101 TFRecord reader, on small files written here in the official layout."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import pytest
from tfrecord_writer import frame, varint

from mixpath.benchmarks_nas import Nb101Cell, cell_to_arch, load_benchmark_evaluator, nb101_costs, read_nasbench101
from mixpath.benchmarks_nas.tfrecord import crc32c, iter_tfrecords, masked_crc32c
from mixpath.errors import MixPathError

C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"


# --- a minimal writer: protobuf wire format, the benchmark's JSON payload, TFRecord framing ---------


def _double_field(number: int, value: float) -> bytes:
    return varint(number << 3 | 1) + struct.pack("<d", value)


def _bytes_field(number: int, value: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(value)) + value


def _evaluation(epoch: float, seconds: float, train: float, valid: float, test: float) -> bytes:
    """An EvaluationData message, with the optional checkpoint path the reader must skip."""
    return (
        _double_field(1, epoch)
        + _double_field(2, seconds)
        + _double_field(3, train)
        + _double_field(4, valid)
        + _double_field(5, test)
        + _bytes_field(6, b"/tmp/model.ckpt-1")
    )


def _model_metrics(params: int, final: tuple[float, float, float, float], epochs: int) -> bytes:
    """ModelMetrics: evaluations at step 0, half-way and the end, the parameter count, total time,
    and an unknown fixed32 field (number 9) that a reader of this version must skip."""
    seconds, train, valid, test = final
    evaluations = [
        _evaluation(0.0, 0.0, 0.1, 0.1, 0.1),
        _evaluation(epochs / 2, seconds / 2, train / 2, valid / 2, test / 2),
        _evaluation(float(epochs), seconds, train, valid, test),
    ]
    message = b"".join(_bytes_field(1, e) for e in evaluations)
    message += varint(2 << 3 | 0) + varint(params)
    message += _double_field(3, seconds + 60.0)
    message += varint(9 << 3 | 5) + struct.pack("<I", 7)
    return message


def _payload(cell: Nb101Cell, epochs: int, params: int, final: tuple[float, float, float, float]) -> bytes:
    bits, ops = cell.to_strings()
    metrics = base64.b64encode(_model_metrics(params, final, epochs)).decode("ascii")
    return json.dumps([cell.hash(), epochs, bits, ops, metrics]).encode("utf-8")


def _write(path: Path, payloads: list[bytes]) -> Path:
    path.write_bytes(b"".join(frame(p) for p in payloads))
    return path


# --- the cells of the test file ----------------------------------------------------------------------

CELL_A = Nb101Cell(
    ((0, 1, 1, 0, 0), (0, 0, 0, 1, 0), (0, 0, 0, 0, 1), (0, 0, 0, 0, 1), (0, 0, 0, 0, 0)),
    ("input", C3, MP, C1, "output"),
)
CELL_B = Nb101Cell(((0, 1, 1), (0, 0, 1), (0, 0, 0)), ("input", C3, "output"))
RUNS_A = [(1500.0, 1.0, 0.90, 0.89), (1510.0, 1.0, 0.92, 0.91), (1520.0, 0.99, 0.91, 0.90)]


@pytest.fixture
def nasbench_file(tmp_path: Path) -> Path:
    """Three 108-epoch runs of cell A, one of cell B, and one 4-epoch run of A (filtered out)."""
    payloads = [_payload(CELL_A, 108, 123_456, run) for run in RUNS_A]
    payloads.append(_payload(CELL_B, 108, 654_321, (900.0, 0.8, 0.7, 0.69)))
    payloads.append(_payload(CELL_A, 4, 123_456, (50.0, 0.5, 0.4, 0.3)))
    return _write(tmp_path / "nasbench_tiny.tfrecord", payloads)


def test_crc32c_matches_the_published_check_values():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert masked_crc32c(b"") == 0xA282EAD8


def test_records_round_trip(nasbench_file):
    records = list(read_nasbench101(nasbench_file))
    assert [r.epochs for r in records] == [108, 108, 108, 108, 4]
    first = records[0]
    assert first.module_hash == CELL_A.hash()
    assert first.adjacency == CELL_A.to_strings()[0]
    assert first.operations == CELL_A.ops
    assert first.trainable_parameters == 123_456
    assert (first.training_time, first.train_accuracy, first.validation_accuracy, first.test_accuracy) == (
        1500.0,
        1.0,
        0.90,
        0.89,
    )
    assert records[3].trainable_parameters == 654_321


def test_nb101_evaluator_averages_the_runs(nasbench_file):
    space, evaluator = load_benchmark_evaluator("nb101", "val", path=nasbench_file)
    padded = Nb101Cell(
        (
            (0, 1, 1, 0, 0, 0, 0),
            (0, 0, 0, 1, 0, 0, 0),
            (0, 0, 0, 0, 0, 0, 1),
            (0, 0, 0, 0, 0, 0, 1),
            (0, 0, 0, 0, 0, 1, 0),
            (0, 0, 0, 0, 0, 0, 0),
            (0, 0, 0, 0, 0, 0, 0),
        ),
        ("input", C3, MP, C1, C3, C3, "output"),
    )  # cell A plus two dangling vertices: the same benchmark cell
    assert padded.hash() == CELL_A.hash()
    (metrics,) = evaluator.evaluate([cell_to_arch(padded)])
    assert metrics["accuracy"] == pytest.approx(91.0)
    assert metrics["test_accuracy"] == pytest.approx(90.0)
    assert metrics["cost_seconds"] == pytest.approx(1510.0)
    assert metrics["params"] == pytest.approx(nb101_costs(CELL_A)[0] / 1e6)
    missing = Nb101Cell(CELL_A.matrix, ("input", C1, MP, C1, "output"))
    padded_missing = cell_to_arch(Nb101Cell(padded.matrix, ("input", C1, MP, C1, C3, C3, "output")))
    assert missing.hash() != CELL_A.hash()
    with pytest.raises(MixPathError, match="not in the nb101 table"):
        evaluator.evaluate([padded_missing])
    with pytest.raises(MixPathError, match="needs the official"):
        load_benchmark_evaluator("nb101", "val")


@pytest.mark.parametrize(("offset", "message"), [(3, "length CRC"), (20, "data CRC")])
def test_corrupt_bytes_raise(tmp_path, nasbench_file, offset, message):
    data = bytearray(nasbench_file.read_bytes())
    data[offset] ^= 0x01
    corrupt = tmp_path / "corrupt.tfrecord"
    corrupt.write_bytes(bytes(data))
    with pytest.raises(MixPathError, match=message):
        list(iter_tfrecords(corrupt))


def test_unverified_reading_skips_the_crc_and_truncation_is_caught(tmp_path, nasbench_file):
    data = bytearray(nasbench_file.read_bytes())
    data[-1] ^= 0x01  # the last record's data CRC
    corrupt = tmp_path / "corrupt.tfrecord"
    corrupt.write_bytes(bytes(data))
    assert len(list(iter_tfrecords(corrupt, verify=False))) == 5
    truncated = tmp_path / "truncated.tfrecord"
    truncated.write_bytes(nasbench_file.read_bytes()[:-10])
    with pytest.raises(MixPathError, match="truncated record"):
        list(iter_tfrecords(truncated))
    with pytest.raises(MixPathError, match="does not exist"):
        list(iter_tfrecords(tmp_path / "absent.tfrecord"))


def test_a_record_that_is_not_nasbench_raises(tmp_path):
    path = _write(tmp_path / "other.tfrecord", [b"\x08\x01 not json"])
    with pytest.raises(MixPathError, match="not a NAS-Bench-101 record"):
        list(read_nasbench101(path))


@pytest.mark.parametrize("verify", [True, False])
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (frame(b"x", length=2**40), "claims 1099511627776 bytes"),  # was MemoryError
        (frame(b"[" * 100000 + b"]" * 100000), "not a NAS-Bench-101 record"),  # was RecursionError
        (frame(json.dumps(["h", "108", "0", "ops", "AAAA"]).encode()), "fields of the wrong types"),  # was ValueError
        (
            frame(json.dumps(["h", 108, "0", "ops", base64.b64encode(b"\x09\x00\x00").decode()]).encode()),
            "past the end",
        ),
    ],
    ids=["length 2^40", "nested JSON", "epochs text", "fixed64 cut short"],  # the last was struct.error
)
def test_a_crafted_record_is_a_one_line_error(tmp_path, data, message, verify):
    path = tmp_path / "crafted.tfrecord"
    path.write_bytes(data)
    with pytest.raises(MixPathError, match=message):
        list(read_nasbench101(path, verify=verify))
