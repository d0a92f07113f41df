"""A value must be written with a version of its topic's subject: a schema from another
subject that would resolve against the contract is still refused (WRONG_SUBJECT)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import fastavro
import pytest
from confluent_kafka.schema_registry import Schema

from eos.serde.avro import AvroContract, AvroDecoder
from eos.serde.wire import DecodeError, frame

PAYMENT = {
    "type": "record",
    "name": "Payment",
    "fields": [{"name": "id", "type": "string"}],
}
# Same record name, one extra field: resolves against PAYMENT by schema resolution.
LOOKALIKE = {**PAYMENT, "fields": [*PAYMENT["fields"], {"name": "x", "type": "long"}]}


@dataclass
class Registry:
    """Two ids: 1 under payments-value, 2 under other-value; counts its lookups."""

    schemas: dict[int, tuple[dict[str, Any], list[str]]] = field(
        default_factory=lambda: {1: (PAYMENT, ["payments-value"]), 2: (LOOKALIKE, ["other-value"])}
    )
    asked: list[str] = field(default_factory=list)

    def get_schema(self, schema_id: int) -> Schema:
        self.asked.append(f"schema {schema_id}")
        return Schema(json.dumps(self.schemas[schema_id][0]), "AVRO")

    def get_subjects_by_schema_id(self, schema_id: int) -> list[str]:
        self.asked.append(f"subjects {schema_id}")
        return self.schemas[schema_id][1]


def _framed(schema_id: int, schema: dict[str, Any], value: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), value)
    return frame(schema_id) + out.getvalue()


def test_a_version_of_the_topics_subject_decodes() -> None:
    decoder = AvroDecoder(Registry(), AvroContract(json.dumps(PAYMENT)), "payments-value")  # type: ignore[arg-type]
    assert decoder.decode(_framed(1, PAYMENT, {"id": "a"})) == {"id": "a"}


def test_a_schema_of_another_subject_is_refused_though_it_resolves() -> None:
    registry = Registry()
    decoder = AvroDecoder(registry, AvroContract(json.dumps(PAYMENT)), "payments-value")  # type: ignore[arg-type]
    data = _framed(2, LOOKALIKE, {"id": "a", "x": 1})
    for _ in range(3):
        with pytest.raises(DecodeError) as caught:
            decoder.decode(data)
        assert caught.value.reason == "WRONG_SUBJECT"
        assert "other-value, not of payments-value" in str(caught.value)
    assert registry.asked == ["subjects 2"]  # the refusal is remembered, not asked per record


def test_without_a_subject_any_resolvable_schema_decodes() -> None:
    decoder = AvroDecoder(Registry(), AvroContract(json.dumps(PAYMENT)))  # type: ignore[arg-type]
    assert decoder.decode(_framed(2, LOOKALIKE, {"id": "a", "x": 1})) == {"id": "a"}
