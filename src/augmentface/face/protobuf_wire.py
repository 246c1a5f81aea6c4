"""A minimal reader of the protobuf wire format.

mediapipe 1.2.x ships no generated protobuf modules, yet the canonical face mesh inside
``face_landmarker.task`` is a serialized ``GeometryPipelineMetadata`` message. The wire format is
small and stable (https://protobuf.dev/programming-guides/encoding/), so we decode it directly:
a message is a sequence of (field number, wire type, value) records.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5


class WireFormatError(ValueError):
    """The bytes are not a well-formed protobuf message."""


@dataclass(frozen=True)
class Field:
    """One record: ``value`` is an int for VARINT/FIXED32/FIXED64, bytes for LEN."""

    number: int
    wire_type: int
    value: int | bytes


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """Decode a base-128 varint at ``pos``; return (value, position after it)."""
    result = shift = 0
    while True:
        if pos >= len(data):
            raise WireFormatError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireFormatError("varint longer than 10 bytes")


def iter_fields(data: bytes) -> Iterator[Field]:
    """Yield the top-level fields of a serialized message in order."""
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise WireFormatError("field number 0")
        if wire_type == VARINT:
            value, pos = read_varint(data, pos)
        elif wire_type == FIXED32:
            value, pos = int.from_bytes(data[pos : pos + 4], "little"), pos + 4
        elif wire_type == FIXED64:
            value, pos = int.from_bytes(data[pos : pos + 8], "little"), pos + 8
        elif wire_type == LEN:
            length, pos = read_varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        else:
            raise WireFormatError(f"unsupported wire type {wire_type} (groups are not used here)")
        if pos > len(data):
            raise WireFormatError(f"field {number} runs past the end of the message")
        yield Field(number, wire_type, value)


def group_fields(data: bytes) -> dict[int, list[Field]]:
    """Map field number -> its records, in order (repeated fields have several)."""
    fields: dict[int, list[Field]] = defaultdict(list)
    for field in iter_fields(data):
        fields[field.number].append(field)
    return dict(fields)


def repeated_floats(fields: list[Field]) -> list[float]:
    """Values of a ``repeated float`` field, whether encoded packed or one record each."""
    out: list[float] = []
    for field in fields:
        if field.wire_type == FIXED32:
            out.append(struct.unpack("<f", int(field.value).to_bytes(4, "little"))[0])
        elif field.wire_type == LEN:
            raw = bytes(field.value)
            if len(raw) % 4:
                raise WireFormatError("packed float field length is not a multiple of 4")
            out.extend(struct.unpack(f"<{len(raw) // 4}f", raw))
        else:
            raise WireFormatError(f"wire type {field.wire_type} cannot hold floats")
    return out


def repeated_varints(fields: list[Field]) -> list[int]:
    """Values of a ``repeated uint32/int32/enum`` field, packed or not."""
    out: list[int] = []
    for field in fields:
        if field.wire_type == VARINT:
            out.append(int(field.value))
        elif field.wire_type == LEN:
            raw, pos = bytes(field.value), 0
            while pos < len(raw):
                value, pos = read_varint(raw, pos)
                out.append(value)
        else:
            raise WireFormatError(f"wire type {field.wire_type} cannot hold varints")
    return out
