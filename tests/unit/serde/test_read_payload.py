"""Reading one Avro payload: what fails is named in a message short enough for a header."""

from __future__ import annotations

import io
import json
from typing import Any

import fastavro
import pytest

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
