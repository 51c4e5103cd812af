"""A minimal TFRecord writer for tests: protobuf varints and record framing, with a length that may lie."""

from __future__ import annotations

import struct

from mixpath.benchmarks_nas.tfrecord import masked_crc32c


def varint(value: int) -> bytes:
    """``value`` as a protobuf base-128 varint."""
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def frame(payload: bytes, length: int | None = None, good_crc: bool = True) -> bytes:
    """One TFRecord: length, its masked CRC, the payload, its masked CRC (``length`` may lie)."""
    head = struct.pack("<Q", len(payload) if length is None else length)
    crc = masked_crc32c(head) if good_crc else 0
    return head + struct.pack("<I", crc) + payload + struct.pack("<I", masked_crc32c(payload) if good_crc else 1)
