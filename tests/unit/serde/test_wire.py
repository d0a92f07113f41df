"""The wire format's header, parsed in one place, and the writer-schema cache."""

from __future__ import annotations

import pytest

from eos.serde.wire import HEADER_SIZE, DecodeError, WriterSchemas, frame, split, trailing


def test_a_framed_value_splits_back_into_its_schema_id_and_payload() -> None:
    data = frame(2**32 - 1) + b"payload"
    schema_id, payload = split(data)
    assert schema_id == 2**32 - 1  # unsigned: ids above 2^31 are ids, not negatives
    assert payload.read() == b"payload"
    assert trailing(payload) == 0


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (None, f"shorter than the {HEADER_SIZE}-byte header"),
        (b"\x00\x00", f"shorter than the {HEADER_SIZE}-byte header"),
        (b"\xb5\x00\x00\x00\x01x", "magic byte is 181, expected 0"),
    ],
)
def test_a_value_that_is_not_framed_is_refused_with_its_reason(
    data: bytes | None, detail: str
) -> None:
    with pytest.raises(DecodeError) as caught:
        split(data)
    assert caught.value.reason == "NOT_WIRE_FORMAT"
    assert detail in str(caught.value)


def test_a_schema_id_is_fetched_once() -> None:
    calls: list[int] = []

    def fetch(schema_id: int) -> str:
        calls.append(schema_id)
        return f"schema {schema_id}"

    schemas = WriterSchemas(fetch)
    assert [schemas.get(7) for _ in range(3)] == ["schema 7"] * 3
    assert calls == [7]


def test_an_unknown_id_is_remembered_for_a_while_then_asked_again() -> None:
    now = [0.0]
    calls: list[int] = []

    def fetch(schema_id: int) -> str:
        calls.append(schema_id)
        raise DecodeError("UNKNOWN_SCHEMA", f"schema id {schema_id} is not in the registry")

    schemas: WriterSchemas[str] = WriterSchemas(fetch, unknown_ttl_s=60, clock=lambda: now[0])
    for _ in range(3):
        with pytest.raises(DecodeError, match="UNKNOWN_SCHEMA"):
            schemas.get(9)
    assert calls == [9]
    now[0] = 61.0
    with pytest.raises(DecodeError):
        schemas.get(9)
    assert calls == [9, 9]


def test_an_unreachable_registry_is_not_remembered() -> None:
    calls: list[int] = []

    def fetch(schema_id: int) -> str:
        calls.append(schema_id)
        raise ConnectionError("registry down")

    schemas: WriterSchemas[str] = WriterSchemas(fetch)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            schemas.get(3)
    assert calls == [3, 3]
