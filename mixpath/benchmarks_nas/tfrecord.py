"""Read the official NAS-Bench-101 file (``nasbench_only108.tfrecord``) in plain Python, no TensorFlow.

Layout, as written by the benchmark (nasbench/api.py reads it back the same way):

- TFRecord framing, per record: length (uint64, little endian), masked CRC32C of those 8 bytes
  (uint32), the payload, masked CRC32C of the payload (uint32). A masked CRC is
  ``((crc >> 15) | (crc << 17)) + 0xA282EAD8`` modulo 2^32.
- The payload is JSON text: ``[module_hash, epochs, adjacency_bits, "op,op,...", metrics]`` where
  ``metrics`` is the base64 of a serialized ``nasbench.ModelMetrics`` protobuf:
  ``repeated EvaluationData evaluation_data = 1; int32 trainable_parameters = 2; double total_time = 3``
  and ``EvaluationData``: ``double current_epoch = 1; double training_time = 2; double train_accuracy = 3;
  double validation_accuracy = 4; double test_accuracy = 5; string checkpoint_path = 6``.
  The evaluations are at step 0, half-way and at the end of training; the end is the last one.

One record is one training run; each cell was trained 3 times, so a cell has 3 records per epoch budget.
Accuracies in the file are fractions (0..1); training time is in seconds. Reading costs about 120 us
per record with CRC checks and 55 us without (measured on 437-byte records), so the ~1.3 million
records of ``nasbench_only108.tfrecord`` take roughly 2.5 minutes (about 1 without checks).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mixpath.errors import MixPathError

_CASTAGNOLI = 0x82F63B78  # CRC-32C polynomial, bit-reversed
_MASK_DELTA = 0xA282EAD8


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _CASTAGNOLI if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``, table-driven, one byte at a time."""
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """The CRC a TFRecord stores: CRC-32C rotated right by 15 bits plus a constant."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def iter_tfrecords(path: str | Path, verify: bool = True) -> Iterator[bytes]:
    """Yield the payload of every record of a TFRecord file.

    ``verify`` checks both CRCs of every record (pure Python: about 10 s per 100 MB); a mismatch,
    or a file that ends inside a record, raises MixPathError naming the record's byte offset.
    """
    path = Path(path)
    if not path.is_file():
        raise MixPathError(f"TFRecord file {str(path)!r} does not exist")
    with path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        while True:
            offset = f.tell()
            header = f.read(12)
            if not header:
                return
            if len(header) < 12:
                raise MixPathError(f"{path}: truncated record header at byte {offset}")
            length_bytes, length_crc = header[:8], struct.unpack("<I", header[8:])[0]
            if verify and masked_crc32c(length_bytes) != length_crc:
                raise MixPathError(f"{path}: corrupt record at byte {offset}: length CRC mismatch")
            (length,) = struct.unpack("<Q", length_bytes)
            if length > size - offset - 16:  # read no more than the file holds, whatever the length claims
                raise MixPathError(f"{path}: truncated record at byte {offset}: it claims {length} bytes")
            payload = f.read(length)
            footer = f.read(4)
            if len(payload) < length or len(footer) < 4:
                raise MixPathError(f"{path}: truncated record at byte {offset}")
            if verify and masked_crc32c(payload) != struct.unpack("<I", footer)[0]:
                raise MixPathError(f"{path}: corrupt record at byte {offset}: data CRC mismatch")
            yield payload


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise MixPathError("corrupt protobuf: varint runs past the end")
        if shift >= 64:
            raise MixPathError("corrupt protobuf: varint longer than 10 bytes")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def proto_fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value) of a protobuf message: varints and fixed-width fields as
    unsigned ints, length-delimited fields as bytes. Enough for the benchmark's messages."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            if pos + width > len(data):
                raise MixPathError(f"corrupt protobuf: field {number} runs past the end")
            value, pos = struct.unpack_from("<Q" if wire == 1 else "<I", data, pos)[0], pos + width
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos : pos + size], pos + size
        else:
            raise MixPathError(f"corrupt protobuf: unsupported wire type {wire} in field {number}")
        if pos > len(data):
            raise MixPathError(f"corrupt protobuf: field {number} runs past the end")
        yield number, wire, value


def _double(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


@dataclass(frozen=True)
class Nb101Record:
    """One training run of one cell, at the end of training (accuracies as fractions, time in seconds)."""

    module_hash: str
    epochs: int
    adjacency: str
    operations: tuple[str, ...]
    trainable_parameters: int
    train_accuracy: float
    validation_accuracy: float
    test_accuracy: float
    training_time: float


_EVALUATION_FIELDS = {2: "training_time", 3: "train_accuracy", 4: "validation_accuracy", 5: "test_accuracy"}


def parse_record(payload: bytes) -> Nb101Record:
    """Decode one record's payload (JSON list with a base64 ModelMetrics protobuf)."""
    try:
        fields = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise MixPathError(f"not a NAS-Bench-101 record: {str(err).splitlines()[0]}") from None
    kinds = (str, int, str, str, str)
    if not isinstance(fields, list) or len(fields) != len(kinds):
        raise MixPathError("not a NAS-Bench-101 record: expected [hash, epochs, adjacency, ops, metrics]")
    if any(not isinstance(value, kind) or isinstance(value, bool) for value, kind in zip(fields, kinds, strict=True)):
        types = [type(value).__name__ for value in fields]
        raise MixPathError(f"not a NAS-Bench-101 record: fields of the wrong types {types}")
    module_hash, epochs, adjacency, operations, metrics_b64 = fields
    try:
        metrics = base64.b64decode(metrics_b64, validate=True)
    except (ValueError, binascii.Error) as err:
        raise MixPathError(f"not a NAS-Bench-101 record: {err}") from None
    params = 0
    evaluations: list[dict[str, float]] = []
    for number, wire, value in proto_fields(metrics):
        if number == 1 and wire == 2 and isinstance(value, bytes):
            evaluation = {
                _EVALUATION_FIELDS[n]: _double(v)
                for n, w, v in proto_fields(value)
                if n in _EVALUATION_FIELDS and w == 1 and isinstance(v, int)
            }
            evaluations.append(evaluation)
        elif number == 2 and wire == 0 and isinstance(value, int):
            params = value
    if not evaluations:
        raise MixPathError(f"NAS-Bench-101 record {module_hash} holds no evaluation")
    final = evaluations[-1]
    return Nb101Record(
        module_hash=str(module_hash),
        epochs=int(epochs),
        adjacency=str(adjacency),
        operations=tuple(str(operations).split(",")),
        trainable_parameters=int(params),
        train_accuracy=final.get("train_accuracy", 0.0),
        validation_accuracy=final.get("validation_accuracy", 0.0),
        test_accuracy=final.get("test_accuracy", 0.0),
        training_time=final.get("training_time", 0.0),
    )


def read_nasbench101(path: str | Path, verify: bool = True) -> Iterator[Nb101Record]:
    """Every record of an official NAS-Bench-101 file (``nasbench_only108.tfrecord`` or the full one)."""
    for payload in iter_tfrecords(path, verify):
        yield parse_record(payload)
