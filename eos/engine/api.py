"""What a transform sees and returns, and the two errors it may raise."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from eos.errors import PermanentError, TransientError

NO_HEADERS: Mapping[str, bytes] = MappingProxyType({})  # shared, so read-only

__all__ = [
    "InputRecord",
    "OutputRecord",
    "PermanentError",
    "Transform",
    "TransientError",
]


# Records are NamedTuples: immutable like frozen dataclasses, and built in a quarter of
# the time (a frozen dataclass sets each field through object.__setattr__), which
# counts at two per record.


class InputRecord(NamedTuple):
    """A consumed record, its value decoded by the input topic's contract."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: Any
    headers: Mapping[str, bytes]
    raw_value: bytes | None = None

    @property
    def key_str(self) -> str | None:
        return None if self.key is None else self.key.decode("utf-8", "replace")


class OutputRecord(NamedTuple):
    """A record to produce inside the batch's transaction.

    `value` is encoded with the output topic's contract (a dict or a pydantic model), or
    sent as is when it is already bytes (or None, a tombstone).
    """

    topic: str
    key: str | bytes | None
    value: Any
    headers: Mapping[str, str | bytes] = NO_HEADERS


Transform = Callable[[InputRecord], Iterable[OutputRecord]]
