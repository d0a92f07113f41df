"""fastavro's compiled calls, made directly, read and write what its public API does."""

from __future__ import annotations

import io
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eos.serde import codec
from eos.serde.avro import AvroContract
from eos.serde.schemas import load_schema

SCHEMA = fastavro.parse_schema(
    {
        "type": "record",
        "name": "t.Payment",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "minor", "type": "long"},
            {"name": "rate", "type": "double"},
            {"name": "ok", "type": "boolean"},
            {"name": "note", "type": ["null", "string"]},
            {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B", "C"]}},
            {"name": "kinds", "type": {"type": "array", "items": "Kind"}},
            {"name": "tags", "type": {"type": "map", "values": "long"}},
            {"name": "raw", "type": "bytes"},
        ],
    }
)

LONGS = st.integers(-(2**63), 2**63 - 1)
VALUES = st.fixed_dictionaries(
    {
        "id": st.text(max_size=20),
        "minor": LONGS,
        "rate": st.floats(allow_nan=False),
        "ok": st.booleans(),
        "note": st.none() | st.text(max_size=5),
        "kind": st.sampled_from(["A", "B", "C"]),
        "kinds": st.lists(st.sampled_from(["A", "B", "C"]), max_size=4),
        "tags": st.dictionaries(st.text(max_size=4), LONGS, max_size=3),
        "raw": st.binary(max_size=10),
    }
)


def test_the_installed_fastavro_passes_the_self_test() -> None:
    # A fastavro whose compiled calls changed is noticed here, not as a slower service.
    assert codec.FAST


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_writing_gives_the_public_functions_bytes(value: dict[str, Any]) -> None:
    public = io.BytesIO()
    public.write(b"\0\0\0\0\7")
    fastavro.schemaless_writer(public, SCHEMA, value, strict=True, strict_allow_default=True)
    assert codec.write_value(b"\0\0\0\0\7", SCHEMA, value) == public.getvalue()


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_reading_gives_the_public_functions_value(value: dict[str, Any]) -> None:
    data = codec.write_value(b"", SCHEMA, value)
    expected = fastavro.schemaless_reader(io.BytesIO(data), SCHEMA, None)
    stream = io.BytesIO(data)
    assert codec.read_value(stream, SCHEMA) == expected == value
    assert stream.tell() == len(data)


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize(
    "value",
    [
        {"id": "x", "minor": 1},  # fields missing
        {"id": 5, "minor": 1, "rate": 0.0, "ok": True, "note": None, "kind": "A"},
    ],
)
def test_a_value_that_does_not_fit_is_refused_on_both_paths(
    value: dict[str, Any], fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(codec, "FAST", fast)
    with pytest.raises((ValueError, TypeError, KeyError)):
        codec.write_value(b"", SCHEMA, value)


def test_an_extra_field_is_refused_as_strictly_as_before() -> None:
    value = {"id": "", "minor": 0, "rate": 0.0, "ok": True, "note": None, "kind": "A"}
    value |= {"kinds": [], "tags": {}, "raw": b"", "extra": 1}
    with pytest.raises(ValueError):
        codec.write_value(b"", SCHEMA, value)


def test_truncated_bytes_fail_to_read() -> None:
    value = {"id": "abcdef", "minor": 1, "rate": 0.0, "ok": True, "note": None, "kind": "A"}
    value |= {"kinds": [], "tags": {}, "raw": b""}
    data = codec.write_value(b"", SCHEMA, value)
    with pytest.raises(EOFError):
        codec.read_value(io.BytesIO(data[:4]), SCHEMA)


def test_a_reader_schema_resolves_through_the_public_function() -> None:
    writer = AvroContract(load_schema("event")).parsed
    reader = fastavro.parse_schema(
        {
            "type": "record",
            "name": "eos.examples.Event",
            "fields": [{"name": "id", "type": "string"}],
        }
    )
    value = {"id": "e1", "seq": 1, "account": "a", "amount": 1, "created_at_ms": 1}
    value |= {"action": "ok", "payload": ""}
    data = codec.write_value(b"", writer, value)
    assert codec.read_value(io.BytesIO(data), writer, reader) == {"id": "e1"}


def test_the_public_functions_serve_when_the_self_test_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(codec, "FAST", False)
    value = {"id": "p", "minor": -3, "rate": 1.5, "ok": False, "note": "n", "kind": "C"}
    value |= {"kinds": ["B"], "tags": {"t": 1}, "raw": b"\1"}
    data = codec.write_value(b"\0", SCHEMA, value)
    assert codec.read_value(io.BytesIO(data[1:]), SCHEMA) == value


@pytest.mark.parametrize("fast", [True, False])
def test_a_missing_field_is_refused_even_with_a_default(
    fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the transform returns is written as it is: no field is filled in for it.
    schema = fastavro.parse_schema(
        {"type": "record", "name": "t.D", "fields": [{"name": "d", "type": "int", "default": 7}]}
    )
    monkeypatch.setattr(codec, "FAST", fast)
    with pytest.raises(ValueError):
        codec.write_value(b"", schema, {})


def test_a_schema_not_parsed_beforehand_is_parsed_once_and_used() -> None:
    raw = {
        "type": "record",
        "name": "t.Pair",
        "fields": [
            {"name": "a", "type": {"type": "fixed", "name": "Two", "size": 2}},
            {"name": "b", "type": "Two"},
        ],
    }
    data = codec.write_value(b"", raw, {"a": b"ab", "b": b"cd"})
    assert data == b"abcd"
    assert codec.read_value(io.BytesIO(data), raw) == {"a": b"ab", "b": b"cd"}
