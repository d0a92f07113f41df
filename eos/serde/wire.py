"""The Confluent wire format, parsed and written in this one place.

A framed value is the magic byte 0, the writer schema's id (4 bytes, big-endian,
unsigned) and the serialized payload. `WriterSchemas` caches what an id resolves to,
and remembers for a while that an id is unknown, so a topic full of records with a
bogus id costs one registry lookup per id, not one per record.
"""

from __future__ import annotations

import io
import struct
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from eos.errors import PermanentError

__all__ = ["HEADER_SIZE", "MAGIC", "DecodeError", "WriterSchemas", "frame", "split", "trailing"]

MAGIC = 0
_HEADER = struct.Struct(">BI")
HEADER_SIZE = _HEADER.size
UNKNOWN_TTL_S = 60.0
# Negative answers about an id that may change once somebody registers it.
REMEMBERED = frozenset({"UNKNOWN_SCHEMA", "WRONG_SUBJECT"})

T = TypeVar("T")


class DecodeError(PermanentError):
    """The bytes are not a valid record of the topic's contract. `reason` is a code
    (NOT_WIRE_FORMAT, UNKNOWN_SCHEMA, MALFORMED_AVRO, ...), `detail` says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def frame(schema_id: int) -> bytes:
    """The 5-byte header that precedes a payload written with schema `schema_id`."""
    return _HEADER.pack(MAGIC, schema_id)


def split(data: bytes | None) -> tuple[int, io.BytesIO]:
    """The writer schema id of a framed value, and its payload as a stream to read."""
    if data is None or len(data) < HEADER_SIZE:
        raise DecodeError("NOT_WIRE_FORMAT", f"value shorter than the {HEADER_SIZE}-byte header")
    magic, schema_id = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise DecodeError("NOT_WIRE_FORMAT", f"magic byte is {magic}, expected {MAGIC}")
    payload = io.BytesIO(data)
    payload.seek(HEADER_SIZE)
    return int(schema_id), payload


def trailing(payload: io.BytesIO) -> int:
    """Bytes of `payload` left unread: a well-formed value has none."""
    return len(payload.getbuffer()) - payload.tell()


class WriterSchemas(Generic[T]):
    """What each schema id resolves to, fetched once.

    `fetch` raises DecodeError("UNKNOWN_SCHEMA", ...) for an id the registry does not
    have, or ("WRONG_SUBJECT", ...) for one that is no version of the topic's subject;
    that answer is kept for `unknown_ttl_s` (the id may be registered there later). Any
    other exception (an unreachable registry) is not cached.
    """

    def __init__(
        self,
        fetch: Callable[[int], T],
        unknown_ttl_s: float = UNKNOWN_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl = unknown_ttl_s
        self._clock = clock
        self._known: dict[int, T] = {}
        self._unknown: dict[int, tuple[float, DecodeError]] = {}

    def known(self, schema_id: int) -> bool:
        """Whether `get` answers `schema_id` from what it holds, asking no one."""
        return schema_id in self._known

    def get(self, schema_id: int) -> T:
        try:
            return self._known[schema_id]
        except KeyError:
            pass
        remembered = self._unknown.get(schema_id)
        if remembered is not None:
            until, error = remembered
            if self._clock() < until:
                raise DecodeError(error.reason, error.detail)
            del self._unknown[schema_id]
        try:
            value = self._fetch(schema_id)
        except DecodeError as exc:
            if exc.reason in REMEMBERED:
                self._unknown[schema_id] = (self._clock() + self._ttl, exc)
            raise
        self._known[schema_id] = value
        return value
