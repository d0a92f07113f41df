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
from typing import Any

import fastavro


def _module(name: str) -> Any:
    """A module of fastavro's, untyped: its stubs do not list these calls."""
    try:
        return importlib.import_module(f"fastavro.{name}")
    except ImportError:  # a fastavro built without its compiled modules
        return None


_compiled_read, _compiled_write = _module("_read"), _module("_write")

__all__ = ["FAST", "read_value", "write_value"]

_READ_OPTIONS = {
    "return_record_name": False,
    "return_record_name_override": False,
    "handle_unicode_errors": "strict",
    "return_named_type": False,
    "return_named_type_override": False,
}
_WRITE_OPTIONS = {"strict": True, "strict_allow_default": True, "disable_tuple_notation": False}
# Per schema, by identity (the schema kept so that a reused id is noticed): it parsed,
# and its named types, as the compiled calls want them.
_PARSED: dict[int, tuple[Any, Any, dict[str, Any]]] = {}


def _parsed(schema: Any) -> tuple[Any, dict[str, Any]]:
    cached = _PARSED.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1], cached[2]
    named: dict[str, Any] = _compiled_read._default_named_schemas()
    parsed = _compiled_read.parse_schema(schema, named["writer"])
    _PARSED[id(schema)] = (schema, parsed, named)
    return parsed, named


def read_value(payload: io.BytesIO, writer: Any, reader: Any = None) -> Any:
    """The value at `payload`'s position, written with `writer` and resolved to `reader`
    (None: the writer's own)."""
    if not FAST or reader is not None:
        return fastavro.schemaless_reader(payload, writer, reader)
    parsed, named = _parsed(writer)
    return _compiled_read._read_data(payload, parsed, named, None, _READ_OPTIONS)


def write_value(header: bytes, schema: Any, value: Any) -> bytes:
    """`header` followed by `value` written with `schema`, strictly: a field missing
    from `value` (even one with a default), or one the schema does not have, is refused."""
    if not FAST:
        stream = io.BytesIO()
        stream.write(header)
        fastavro.schemaless_writer(stream, schema, value, strict=True, strict_allow_default=True)
        return stream.getvalue()
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
    global FAST
    compiled = (getattr(m, "CYTHON_MODULE", 0) for m in (_compiled_read, _compiled_write))
    if not all(compiled):
        return False
    schema = fastavro.parse_schema(_SELF_TEST_SCHEMA)
    value = _SELF_TEST_VALUE
    try:
        FAST = False
        expected, back = write_value(b"\0", schema, value), None
        back = read_value(io.BytesIO(expected[1:]), schema)
        FAST = True
        written = write_value(b"\0", schema, value)
        return written == expected and read_value(io.BytesIO(written[1:]), schema) == back
    except Exception:  # a changed signature or behaviour: keep to the public API
        return False
    finally:
        FAST = False
        _PARSED.clear()


FAST = False
FAST = _self_test()
