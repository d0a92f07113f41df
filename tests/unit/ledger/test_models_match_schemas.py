"""The pydantic types in eos.ledger.models must say what schemas/ledger/*.avsc say."""

from __future__ import annotations

import json
import types
import typing
from datetime import datetime
from enum import StrEnum
from typing import Any

import pytest
from pydantic import BaseModel

from eos.ledger import models
from eos.serde.schemas import load_schema

PAIRS = [
    ("ledger/payment_request", models.PaymentRequest),
    ("ledger/credit_leg", models.CreditLeg),
    ("ledger/ledger_entry", models.LedgerEntry),
    ("ledger/payment_rejection", models.PaymentRejection),
    ("ledger/payment_outcome", models.PaymentOutcome),
]
PRIMITIVES: dict[str, type] = {
    "string": str,
    "long": int,
    "int": int,
    "boolean": bool,
    "double": float,
    "bytes": bytes,
}


def _expected(avro_type: Any) -> tuple[Any, bool]:
    """(python type, optional) for an Avro field type."""
    if isinstance(avro_type, list):
        rest = [t for t in avro_type if t != "null"]
        assert len(rest) == 1, f"only [null, T] unions are supported, got {avro_type}"
        return _expected(rest[0])[0], "null" in avro_type
    if isinstance(avro_type, dict):
        if avro_type.get("logicalType") == "timestamp-millis":
            return datetime, False
        if avro_type["type"] == "enum":
            return ("enum", tuple(avro_type["symbols"])), False
        return _expected(avro_type["type"])
    return PRIMITIVES[avro_type], False


def _actual(annotation: Any) -> tuple[Any, bool]:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return _actual(rest[0])[0], True
    if isinstance(annotation, type) and issubclass(annotation, StrEnum):
        return ("enum", tuple(m.value for m in annotation)), False
    return annotation, False


@pytest.mark.parametrize(("schema", "model"), PAIRS, ids=[p[0] for p in PAIRS])
def test_model_fields_match_the_avro_schema(schema: str, model: type[BaseModel]) -> None:
    avro = json.loads(load_schema(schema))
    avro_fields = {f["name"]: f for f in avro["fields"]}
    assert list(avro_fields) == list(model.model_fields), "field names or order differ"
    hints = typing.get_type_hints(model)
    for name, field in avro_fields.items():
        assert _actual(hints[name]) == _expected(field["type"]), name
        if "default" in field:
            assert model.model_fields[name].default == field["default"], name
        else:
            assert model.model_fields[name].is_required(), name


def test_a_drift_is_caught() -> None:
    """The comparison itself can fail: a model with one field too many does not match."""

    class Drifted(models.PaymentOutcome):
        extra: str = ""

    avro = json.loads(load_schema("ledger/payment_outcome"))
    assert [f["name"] for f in avro["fields"]] != list(Drifted.model_fields)
