"""A contract's pydantic model on both sides of the codec: decoded values are validated by
it (and by a model's own `model_validate`, when it has one), encoded values are what its
`model_dump` gives."""

from __future__ import annotations

import io
import json
from typing import Any

import fastavro
import pytest
from pydantic import BaseModel, Field

from eos.serde.avro import AvroContract, AvroDecoder, AvroEncoder
from eos.serde.wire import DecodeError, frame

SCHEMA = {
    "type": "record",
    "name": "Item",
    "fields": [{"name": "id", "type": "string"}, {"name": "n", "type": "long"}],
}


class Item(BaseModel):
    id: str = Field(min_length=1)
    n: int = Field(ge=0)


class Trimmed(Item):
    """Overrides model_validate: the decoder must go through it."""

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Trimmed:
        return super().model_validate({**obj, "id": obj["id"].strip()}, **kwargs)


class Doubled(Item):
    """Overrides model_dump: the encoder must write what it gives."""

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().model_dump(**kwargs), "n": self.n * 2}


class Registry:
    def get_schema(self, _schema_id: int) -> Any:
        from confluent_kafka.schema_registry import Schema

        return Schema(json.dumps(SCHEMA), "AVRO")

    def get_subjects_by_schema_id(self, _schema_id: int) -> list[str]:
        return ["items-value"]


def _framed(value: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(SCHEMA), value)
    return frame(1) + out.getvalue()


def _decoder(model: type[BaseModel]) -> AvroDecoder:
    return AvroDecoder(Registry(), AvroContract(json.dumps(SCHEMA), model))  # type: ignore[arg-type]


def _encoder(model: type[BaseModel]) -> AvroEncoder:
    encoder = AvroEncoder(Registry(), "items", AvroContract(json.dumps(SCHEMA), model))  # type: ignore[arg-type]
    encoder.schema_id, encoder._header = 1, frame(1)  # no registry lookup
    return encoder


def _read(data: bytes) -> Any:
    return fastavro.schemaless_reader(io.BytesIO(data[5:]), fastavro.parse_schema(SCHEMA))


def test_a_value_is_decoded_into_its_model() -> None:
    value = _decoder(Item).decode(_framed({"id": "a", "n": 3}))
    assert value == Item(id="a", n=3)
    assert type(value) is Item


def test_a_value_its_model_refuses_is_invalid() -> None:
    with pytest.raises(DecodeError) as caught:
        _decoder(Item).decode(_framed({"id": "a", "n": -1}))
    assert caught.value.reason == "INVALID_VALUE"
    assert "greater than or equal to 0" in str(caught.value)


def test_a_models_own_model_validate_is_used() -> None:
    value = _decoder(Trimmed).decode(_framed({"id": "  a ", "n": 3}))
    assert value == Trimmed(id="a", n=3)


def test_a_model_is_encoded_as_its_dump() -> None:
    assert _read(_encoder(Item).encode(Item(id="a", n=3))) == {"id": "a", "n": 3}


def test_a_models_own_model_dump_is_used() -> None:
    assert _read(_encoder(Doubled).encode(Doubled(id="a", n=3))) == {"id": "a", "n": 6}
