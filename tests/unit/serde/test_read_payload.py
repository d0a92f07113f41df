"""Reading one Avro payload: what fails is named in a message short enough for a header."""

from __future__ import annotations

import io
import json
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eos.serde.avro import MESSAGE_MAX, read_payload
from eos.serde.wire import DecodeError


def _schema(name: str, fields: int) -> Any:
    return fastavro.parse_schema(
        {
            "type": "record",
            "name": name,
            "fields": [{"name": f"f{i}", "type": "long"} for i in range(fields)],
        }
    )


def test_a_schema_mismatch_is_named_without_both_whole_schemas() -> None:
    writer, reader = _schema("Wide", 60), _schema("Other", 1)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, writer, {f"f{i}": i for i in range(60)})
    buf.seek(0)
    with pytest.raises(DecodeError) as info:
        read_payload(buf, writer, reader)
    message = str(info.value)
    assert message.startswith("MALFORMED_AVRO") and "SchemaResolutionError" in message
    assert len(json.dumps(writer)) > 1000  # what the message would have carried
    assert len(message) < MESSAGE_MAX + 100
    assert "characters)" in message


def test_a_short_failure_is_kept_whole() -> None:
    writer = _schema("One", 1)
    with pytest.raises(DecodeError) as info:
        read_payload(io.BytesIO(b""), writer)
    assert "characters)" not in str(info.value)


AMOUNT = fastavro.parse_schema(
    {
        "type": "record",
        "name": "Amount",
        "fields": [
            {"name": "minor", "type": "long"},
            {"name": "note", "type": ["null", "string"]},
        ],
    }
)


def _varint(n: int, pad_to: int = 0) -> bytes:
    """A zig-zag varint, padded with continuation bytes to `pad_to` bytes."""
    z = (n << 1) ^ (n >> 63) if n >= 0 else ((-n - 1) << 1) | 1
    out = []
    while True:
        out.append(z & 0x7F)
        z >>= 7
        if not z:
            break
    while len(out) < pad_to:
        out[-1] |= 0x80
        out.append(0)
    return bytes(b | 0x80 if i < len(out) - 1 else b for i, b in enumerate(out))


def _read(data: bytes) -> Any:
    return read_payload(io.BytesIO(data), AMOUNT)


def test_a_canonical_record_reads() -> None:
    assert _read(_varint(5) + _varint(0)) == {"minor": 5, "note": None}


@pytest.mark.parametrize(
    "data",
    [
        _varint(5, pad_to=11) + _varint(0),  # a long of 11 bytes: Avro allows at most 10
        _varint(5, pad_to=3) + _varint(0),  # a long padded past its shortest form
        _varint(5) + _varint(-1) + _varint(1) + b"x",  # union index -1
    ],
    ids=["eleven-byte-long", "padded-long", "negative-union-index"],
)
def test_an_encoding_avro_does_not_allow_is_malformed(data: bytes) -> None:
    with pytest.raises(DecodeError, match="MALFORMED_AVRO"):
        _read(data)


def test_a_schema_with_arrays_is_not_checked_byte_for_byte() -> None:
    schema = fastavro.parse_schema(
        {
            "type": "record",
            "name": "Batch",
            "fields": [{"name": "items", "type": {"type": "array", "items": "long"}}],
        }
    )
    # Two blocks of one item each: valid Avro that fastavro would write as one block.
    data = _varint(1) + _varint(7) + _varint(1) + _varint(8) + _varint(0)
    assert read_payload(io.BytesIO(data), schema) == {"items": [7, 8]}


PLAIN = fastavro.parse_schema(
    {
        "type": "record",
        "name": "Plain",
        "fields": [
            {"name": "minor", "type": "long"},
            {"name": "note", "type": "string"},
            {"name": "count", "type": "int"},
        ],
    }
)


def _read_plain(data: bytes) -> Any:
    return read_payload(io.BytesIO(data), PLAIN)


@pytest.mark.parametrize(
    "data",
    [
        _varint(5, pad_to=11) + _varint(1) + b"x" + _varint(2),
        _varint(5, pad_to=3) + _varint(1) + b"x" + _varint(2),
        _varint(5) + _varint(1) + b"x" + _varint(2, pad_to=2),
        _varint(5 + 2**70) + _varint(0) + _varint(2),
    ],
    ids=["eleven-byte-long", "padded-long", "padded-int", "long-past-64-bits"],
)
def test_without_a_union_a_long_encoding_is_still_malformed(data: bytes) -> None:
    """The write-back check is skipped for a payload with no varint longer than it needs:
    every one that has such a varint is still checked, and refused."""
    with pytest.raises(DecodeError, match="MALFORMED_AVRO"):
        _read_plain(data)


def test_a_plain_record_with_non_ascii_text_reads() -> None:
    note = "é" * 12  # high bytes in a row, as a long varint has: checked, and fine
    encoded = note.encode()
    data = _varint(-300) + _varint(len(encoded)) + encoded + _varint(0)
    assert _read_plain(data) == {"minor": -300, "note": note, "count": 0}


CHOICES = fastavro.parse_schema(
    {
        "type": "record",
        "name": "Choices",
        "fields": [
            {"name": "side", "type": {"type": "enum", "name": "Side", "symbols": ["D", "C"]}},
            {"name": "note", "type": ["null", "string", "long"]},
            {"name": "again", "type": "Side"},
            {"name": "minor", "type": "long"},
        ],
    }
)
SIDE = fastavro.parse_schema(
    {
        "type": "record",
        "name": "Posting",
        "fields": [
            {"name": "minor", "type": "long"},
            {"name": "side", "type": {"type": "enum", "name": "Side", "symbols": ["D", "C"]}},
        ],
    }
)
FLAG = fastavro.parse_schema(
    {
        "type": "record",
        "name": "Flag",
        "fields": [{"name": "minor", "type": "long"}, {"name": "on", "type": "boolean"}],
    }
)


def _verdicts(schema: Any, data: bytes) -> tuple[Any, Any]:
    """`data` read by read_payload, and read with the write-back check always made: the
    value, or "refused"."""

    def full(raw: bytes) -> Any:
        buf = io.BytesIO(raw)
        value = fastavro.schemaless_reader(buf, schema, None)
        if buf.read():
            raise DecodeError("MALFORMED_AVRO", "trailing")
        again = io.BytesIO()
        fastavro.schemaless_writer(again, schema, value)
        if again.getvalue() != raw:
            raise DecodeError("MALFORMED_AVRO", "not canonical")
        return value

    try:
        expected: Any = full(data)
    except Exception:
        expected = "refused"
    try:
        got: Any = read_payload(io.BytesIO(data), schema)
    except DecodeError:
        got = "refused"
    return got, expected


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=40))
def test_skipping_the_write_back_changes_no_verdict(data: bytes) -> None:
    """Any bytes: read as now, and read with the write-back check always made, give the
    same value or the same refusal."""
    got, expected = _verdicts(PLAIN, data)
    assert got == expected


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=24))
def test_unions_enums_and_booleans_get_the_same_verdict_as_a_write_back(data: bytes) -> None:
    for schema in (CHOICES, SIDE, FLAG):
        got, expected = _verdicts(schema, data)
        assert got == expected


@pytest.mark.parametrize(
    ("schema", "data"),
    [
        (CHOICES, _varint(-1) + _varint(0) + _varint(0) + _varint(5)),  # enum index -1
        (CHOICES, _varint(0) + _varint(-3) + _varint(7) + _varint(0) + _varint(5)),
        (SIDE, _varint(5) + _varint(-2)),  # no union: checked all the same
        (FLAG, _varint(5) + b"\x02"),  # a boolean is the byte 0 or 1
    ],
    ids=["negative-enum-index", "negative-union-index", "enum-only", "boolean-of-2"],
)
def test_an_index_or_boolean_avro_does_not_allow_is_malformed(schema: Any, data: bytes) -> None:
    with pytest.raises(DecodeError, match="MALFORMED_AVRO"):
        read_payload(io.BytesIO(data), schema)
