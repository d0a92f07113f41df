"""What a transform sees and returns, and the two errors it may raise."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from eos.errors import PermanentError, TransientError

__all__ = [
    "InputRecord",
    "OutputRecord",
    "PermanentError",
    "Transform",
    "TransientError",
]


@dataclass(frozen=True)
class InputRecord:
    """A consumed record, its value decoded by the input topic's contract."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: Any
    headers: Mapping[str, bytes]
    raw_value: bytes | None = field(repr=False, default=None)

    @property
    def key_str(self) -> str | None:
        return None if self.key is None else self.key.decode("utf-8", "replace")


@dataclass(frozen=True)
class OutputRecord:
    """A record to produce inside the batch's transaction.

    `value` is encoded with the output topic's contract (a dict or a pydantic model), or
    sent as is when it is already bytes (or None, a tombstone).
    """

    topic: str
    key: str | bytes | None
    value: Any
    headers: Mapping[str, str | bytes] = field(default_factory=dict)


Transform = Callable[[InputRecord], Iterable[OutputRecord]]
