"""Avro in the Confluent wire format (see `eos.serde.wire`).

fastavro does the (de)serialization; the registry is asked once per schema id. Every
failure is classified: bad bytes are permanent (the record goes to the DLQ), an
unreachable registry is transient (retry later, never DLQ a good record).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import fastavro
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from pydantic import BaseModel, ValidationError

from eos.errors import PermanentError, TransientError
from eos.serde.codec import per_schema, read_value, write_value
from eos.serde.registry import RegistryUnavailable, schema_str, subjects_of
from eos.serde.wire import DecodeError, WriterSchemas, frame, split, trailing

__all__ = [
    "NOT_CACHED",
    "AvroContract",
    "AvroDecoder",
    "AvroEncoder",
    "DecodeError",
    "EncodeError",
    "RegistryUnavailable",
    "SchemaNotRegistered",
    "read_payload",
    "record_subject",
    "subject_for",
]


class EncodeError(PermanentError):
    """An output value does not fit its topic's schema."""


@dataclass(frozen=True)
class AvroContract:
    """A topic's value contract: the Avro schema, and optionally the pydantic type."""

    schema_str: str
    model: type[BaseModel] | None = None
    parsed: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "parsed", fastavro.parse_schema(json.loads(self.schema_str)))


def subject_for(topic: str) -> str:
    """Topic-name strategy, as Confluent's serializers use by default."""
    return f"{topic}-value"


def record_subject(contract: AvroContract) -> str:
    """Record-name strategy: the subject of values whose topic is known only at run time
    (reply-to topics), so setup can register it in advance."""
    return str(contract.parsed["name"])


class SchemaNotRegistered(TransientError):
    """The subject has no version with the schema an output needs: setup has not
    registered it (yet). Waited for at run time; a configuration error at start."""


NOT_CACHED = object()  # see AvroDecoder.decode
_VALIDATE = BaseModel.model_validate.__func__  # type: ignore[attr-defined]
_DUMP = BaseModel.model_dump


class AvroDecoder:
    """Decodes one input topic's values into dicts or the contract's pydantic model."""

    def __init__(
        self, registry: SchemaRegistryClient, contract: AvroContract, subject: str | None = None
    ) -> None:
        """`subject`: the topic's subject; a value written with a schema id that is not one
        of its versions is refused (WRONG_SUBJECT) even when its schema would resolve."""
        self._registry = registry
        self._contract = contract
        self._subject = subject
        self._writers: WriterSchemas[Any] = WriterSchemas(self._writer)
        # What model_validate does, without its keyword handling (0.4 us a record),
        # unless the model has its own model_validate.
        validate = getattr(contract.model, "model_validate", None)
        self._plain_model = getattr(validate, "__func__", None) is _VALIDATE

    def decode(self, data: bytes | None, cached_only: bool = False) -> Any:
        """The value of `data`. `cached_only`: NOT_CACHED rather than ask the registry for
        a writer schema not fetched before (a caller decoding ahead must not block)."""
        schema_id, buf = split(data)
        if cached_only and not self._writers.known(schema_id):
            return NOT_CACHED
        writer = self._writers.get(schema_id)
        reader = None if writer is self._contract.parsed else self._contract.parsed
        value = read_payload(buf, writer, reader, data)
        model = self._contract.model
        if model is None:
            return value
        try:
            if self._plain_model:
                return model.__pydantic_validator__.validate_python(value)
            return model.model_validate(value)
        except ValidationError as exc:
            raise DecodeError("INVALID_VALUE", _short_validation(exc)) from exc

    def _writer(self, schema_id: int) -> Any:
        if self._subject is not None:
            subjects = subjects_of(self._registry, schema_id)
            if self._subject not in subjects:
                named = ", ".join(sorted(subjects)[:3]) or "no subject"
                raise DecodeError(
                    "WRONG_SUBJECT",
                    f"schema id {schema_id} is a version of {named}, not of {self._subject}",
                )
        parsed = fastavro.parse_schema(json.loads(schema_str(self._registry, schema_id)))
        if _same_schema(parsed, self._contract.parsed):
            return self._contract.parsed  # same schema: skip schema resolution when reading
        return parsed


class AvroEncoder:
    """Encodes values for one output with the id its schema has in the registry.

    The id is looked up, not registered (schemas are registered by setup or CI, as
    Confluent advises for production), once, on first use or `prepare()`: an unreachable
    registry (RegistryUnavailable) or a schema not yet registered (SchemaNotRegistered)
    is a reason to wait, never to dead-letter. `auto_register` is for producers that own
    their subject (load generators, tests), not for processors.
    """

    def __init__(
        self,
        registry: SchemaRegistryClient,
        topic: str,
        contract: AvroContract,
        auto_register: bool = False,
        subject: str | None = None,
    ) -> None:
        self.contract = contract
        self.subject = subject or subject_for(topic)
        self._registry = registry
        self._auto_register = auto_register
        self._header: bytes | None = None
        self.schema_id = -1

    def for_topic(self, _topic: str) -> AvroEncoder:
        """This encoder, whatever the topic (its subject does not name one)."""
        return self

    def prepare(self) -> None:
        """Find the schema's id (the first call asks the registry)."""
        if self._header is not None:
            return
        schema = Schema(self.contract.schema_str, "AVRO")
        try:
            if self._auto_register:
                schema_id = self._registry.register_schema(self.subject, schema)
            else:
                schema_id = self._registry.lookup_schema(self.subject, schema).schema_id or -1
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                raise SchemaNotRegistered(
                    f"subject {self.subject} has no version with this schema; register it "
                    "first (`eos schemas register`, or `eos ledger setup` for the ledger)"
                ) from exc
            raise RegistryUnavailable(
                f"schema registry error looking up {self.subject}: {exc}"
            ) from exc
        except Exception as exc:  # connection refused, timeouts: the registry is down
            raise RegistryUnavailable(
                f"schema registry unreachable looking up {self.subject}: {exc}"
            ) from exc
        self.schema_id = schema_id
        self._header = frame(schema_id)

    def encode(self, value: Any) -> bytes:
        if isinstance(value, BaseModel):
            # What model_dump does, without its keyword handling (0.4 us a value),
            # unless the model has its own model_dump.
            if type(value).model_dump is _DUMP:
                value = value.__pydantic_serializer__.to_python(value)
            else:
                value = value.model_dump()
        if self._header is None:
            self.prepare()
        assert self._header is not None
        try:
            return write_value(self._header, self.contract.parsed, value)
        except Exception as exc:  # fastavro raises ValueError/TypeError/KeyError on misfit
            raise EncodeError(f"value does not fit the output schema: {exc}") from exc


def read_payload(
    payload: io.BytesIO, writer: Any, reader: Any = None, whole: bytes | None = None
) -> Any:
    """One Avro value from a split payload (see eos.serde.wire.split), written with
    `writer` and resolved to `reader`; DecodeError when it does not parse, leaves bytes
    over, or is not the one encoding Avro allows for what it holds. `whole`: the bytes
    `payload` reads, when the caller has them (saves a copy)."""
    start = payload.tell()
    try:
        value = read_value(payload, writer, reader)
    except Exception as exc:  # fastavro raises EOFError, ValueError, IndexError, ...
        raise DecodeError("MALFORMED_AVRO", f"{type(exc).__name__}: {_capped(str(exc))}") from exc
    extra = trailing(payload)
    if extra:
        raise DecodeError("MALFORMED_AVRO", f"{extra} trailing bytes after the record")
    canonical_only, indexed = _traits(writer)
    if canonical_only:
        data = payload.getvalue() if whole is None else whole
        if _long_varint(data, start) or _negative_index_maybe(data, start, indexed):
            _check_canonical(payload, start, writer, value if reader is None else None)
    return value


# Where a varint is longer than its value needs: padded (a continuation byte, then a
# final 0x00) or of 10 bytes and more (9 continuation bytes in a row). Without either,
# and without a union (whose negative index no byte pattern shows), a payload of a
# canonical-only schema is canonical, so it need not be written back to be checked.
# Bytes are classed first (H: high bit set, Z: zero) so that both searches run in C.
_CLASSES = bytes(ord("H") if b >= 0x80 else ord("Z") if b == 0 else ord(".") for b in range(256))
_PADDED, _NINE_HIGH = b"HZ", b"H" * 9


def _long_varint(data: bytes, start: int) -> bool:
    if data.isascii():  # no continuation byte at all
        return False
    shape = data.translate(_CLASSES)
    return shape.find(_PADDED, start) >= 0 or shape.find(_NINE_HIGH, start) >= 0


# A negative index -i (1 <= i <= 64) is the one byte 2i - 1, and one of a union or enum
# of n choices lies in -n..-1 (any other fails to read). A payload with none of those
# bytes holds no negative index (a padded one is a long varint, found above), so it need
# not be written back to be checked. Past 64 choices, or with a boolean (whose bad bytes,
# 2 to 255, no search can tell from the data's), every payload is written back.
_ODD = [bytes([2 * i + 1]) for i in range(64)]
ALWAYS = len(_ODD) + 1


def _negative_index_maybe(data: bytes, start: int, choices: int) -> bool:
    if not choices:
        return False
    if choices >= ALWAYS:
        return True
    return any(data.find(_ODD[i], start) >= 0 for i in range(choices))


def _check_canonical(payload: io.BytesIO, start: int, writer: Any, value: Any) -> None:
    """fastavro reads a long of more than 10 bytes (keeping only its low bits) and a
    negative union index (Python's index from the end); Avro allows neither. Writing the
    value back must give the same bytes."""
    written = payload.getvalue()[start:]
    if value is None:
        value = fastavro.schemaless_reader(io.BytesIO(written), writer, None)
    again = io.BytesIO()
    try:
        fastavro.schemaless_writer(again, writer, value)
    except Exception as exc:  # a value fastavro read but cannot write was never valid
        raise DecodeError("MALFORMED_AVRO", f"{type(exc).__name__}: {_capped(str(exc))}") from exc
    if again.getvalue() != written:
        raise DecodeError(
            "MALFORMED_AVRO",
            "not the canonical encoding of its value (a long of more than 10 bytes or a "
            "negative union index)",
        )


# Types a valid writer may encode in more than one way (arrays and maps in blocks, float
# NaN payloads): a record holding them is not checked byte for byte.
_SEVERAL_ENCODINGS = {"array", "map", "float", "double"}


@per_schema
def _traits(schema: Any) -> tuple[bool, int]:
    """Whether every valid encoding of a value of `schema` is the one fastavro writes,
    and the most choices of its unions and enums (ALWAYS with a boolean; 0: none)."""
    text = json.dumps(schema)
    return not any(f'"{t}"' in text for t in _SEVERAL_ENCODINGS), _choices(schema)


def _choices(schema: Any) -> int:
    """The most choices of a union or enum in `schema`; ALWAYS when it has a boolean,
    which fastavro reads from any byte."""
    if schema == "boolean":
        return ALWAYS
    if isinstance(schema, list):
        return max([len(schema), *(_choices(t) for t in schema)])
    if isinstance(schema, dict):
        if schema.get("type") == "enum":
            return len(schema.get("symbols", ()))
        types = [schema.get("type"), schema.get("items"), schema.get("values")]
        types += [f.get("type") for f in schema.get("fields", [])]
        types += schema.get("__named_schemas", {}).values()  # where names used twice live
        return max([0, *(_choices(t) for t in types if t is not None)])
    return 0


MESSAGE_MAX = 300  # a schema mismatch names both whole schemas: enough to tell which


def _capped(text: str) -> str:
    """`text`, cut to MESSAGE_MAX characters: it travels in DLQ headers and log lines."""
    if len(text) <= MESSAGE_MAX:
        return text
    return f"{text[:MESSAGE_MAX]}... ({len(text)} characters)"


def _same_schema(a: Any, b: Any) -> bool:
    return bool(json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True))


def _short_validation(exc: ValidationError) -> str:
    errors = exc.errors()
    parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:3]]
    more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(parts) + more
