"""One Avro value read or written with a schema parsed once, by fastavro.

fastavro's public `schemaless_reader`/`schemaless_writer` set up every call afresh: the
schema's named types gathered again, an options dict, and for writing a buffer copied
into the caller's stream. Its compiled module's own entry points take that set-up as
arguments, so it is done once per schema here: a seventh of an encode, a tenth of a
decode. They are not fastavro's public API, so they are used only when a self-test at
import gives the public functions' results; otherwise the public functions are.
"""

from __future__ import annotations

import importlib
import io
from collections.abc import Callable
from typing import Any, TypeVar

import fastavro

__all__ = ["FAST", "per_schema", "read_value", "write_value"]

T = TypeVar("T")


def _module(name: str) -> Any:
    """A module of fastavro's, untyped: its stubs do not list these calls."""
    try:
        return importlib.import_module(f"fastavro.{name}")
    except ImportError:  # a fastavro built without its compiled modules
        return None


_compiled_read, _compiled_write = _module("_read"), _module("_write")

_READ_OPTIONS = {
    "return_record_name": False,
    "return_record_name_override": False,
    "handle_unicode_errors": "strict",
    "return_named_type": False,
    "return_named_type_override": False,
}
_WRITE_OPTIONS = {"strict": True, "strict_allow_default": True, "disable_tuple_notation": False}


def per_schema(work: Callable[[Any], T]) -> Callable[[Any], T]:
    """`work`, done once per schema object and then looked up: asked for every record.
    Kept by identity, with the schema itself, so that an id reused by another schema
    is noticed (the schema stays alive as long as its entry)."""
    done: dict[int, tuple[Any, T]] = {}

    def cached(schema: Any) -> T:
        hit = done.get(id(schema))
        if hit is not None and hit[0] is schema:
            return hit[1]
        answer = work(schema)
        done[id(schema)] = (schema, answer)
        return answer

    return cached


@per_schema
def _parsed(schema: Any) -> tuple[Any, dict[str, Any]]:
    """The schema parsed, and its named types, as the compiled calls want them."""
    named: dict[str, Any] = _compiled_read._default_named_schemas()
    return _compiled_read.parse_schema(schema, named["writer"]), named


def read_value(payload: io.BytesIO, writer: Any, reader: Any = None) -> Any:
    """The value at `payload`'s position, written with `writer` and resolved to `reader`
    (None: the writer's own)."""
    if not FAST or reader is not None:
        return fastavro.schemaless_reader(payload, writer, reader)
    return _compiled_read_value(payload, writer)


def write_value(header: bytes, schema: Any, value: Any) -> bytes:
    """`header` followed by `value` written with `schema`, strictly: a field missing
    from `value` (even one with a default), or one the schema does not have, is refused."""
    if not FAST:
        return _public_write_value(header, schema, value)
    return _compiled_write_value(header, schema, value)


def _public_write_value(header: bytes, schema: Any, value: Any) -> bytes:
    stream = io.BytesIO()
    stream.write(header)
    fastavro.schemaless_writer(stream, schema, value, strict=True, strict_allow_default=True)
    return stream.getvalue()


def _compiled_read_value(payload: io.BytesIO, writer: Any) -> Any:
    parsed, named = _parsed(writer)
    return _compiled_read._read_data(payload, parsed, named, None, _READ_OPTIONS)


def _compiled_write_value(header: bytes, schema: Any, value: Any) -> bytes:
    buf = bytearray(header)
    parsed, named = _parsed(schema)
    _compiled_write.write_data(buf, value, parsed, named["writer"], "", _WRITE_OPTIONS)
    return bytes(buf)


_SELF_TEST_SCHEMA = {
    "type": "record",
    "name": "eos.selftest.Outer",
    "fields": [
        {"name": "s", "type": "string"},
        {"name": "n", "type": "long"},
        {"name": "u", "type": ["null", {"type": "enum", "name": "E", "symbols": ["A", "B"]}]},
        {"name": "i", "type": {"type": "array", "items": "E"}},
        {"name": "d", "type": "int"},
    ],
}
_SELF_TEST_VALUE = {"s": "é", "n": -(2**40), "u": "B", "i": ["A", "B"], "d": 7}


def _self_test() -> bool:
    """Whether the compiled calls exist and give the public functions' bytes and value."""
    if not all(getattr(m, "CYTHON_MODULE", 0) for m in (_compiled_read, _compiled_write)):
        return False
    schema = fastavro.parse_schema(_SELF_TEST_SCHEMA)
    try:
        expected = _public_write_value(b"\0", schema, _SELF_TEST_VALUE)
        value = fastavro.schemaless_reader(io.BytesIO(expected[1:]), schema, None)
        written = _compiled_write_value(b"\0", schema, _SELF_TEST_VALUE)
        return (
            written == expected and _compiled_read_value(io.BytesIO(written[1:]), schema) == value
        )
    except Exception:  # a changed signature or behaviour: keep to the public API
        return False


FAST = _self_test()
