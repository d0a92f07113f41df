"""A consumed record held in memory until its batch commits, and the record to produce."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from confluent_kafka import Message, TopicPartition

from eos.kafka.produce import Encoded

__all__ = ["Consumed", "Encoded", "next_offsets"]


class Consumed(NamedTuple):
    """A consumed record (a NamedTuple: built once per record, see eos.engine.api)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    @classmethod
    def from_message(cls, msg: Message) -> Consumed:
        # tuple.__new__: every field given, so the generated __new__ (keywords,
        # defaults) is not needed, and this runs once per record.
        return tuple.__new__(
            cls,
            (
                msg.topic() or "",
                msg.partition() or 0,
                msg.offset() or 0,
                msg.timestamp()[1],
                msg.key(),
                msg.value(),
                _headers(msg),
            ),
        )

    @property
    def tp(self) -> tuple[str, int]:
        return self.topic, self.partition

    @property
    def where(self) -> str:
        """topic[partition]@offset, for messages."""
        return f"{self.topic}[{self.partition}]@{self.offset}"


def next_offsets(records: Sequence[Consumed]) -> list[TopicPartition]:
    """The offsets to commit for `records`: per partition, the last offset + 1."""
    last: dict[tuple[str, int], int] = {}
    get = last.get
    for rec in records:
        tp = (rec.topic, rec.partition)
        if rec.offset > get(tp, -1):
            last[tp] = rec.offset
    return [TopicPartition(t, p, o + 1) for (t, p), o in sorted(last.items())]


def _headers(msg: Message) -> list[tuple[str, bytes]]:
    raw = msg.headers()
    if not raw:
        return []
    items = raw.items() if isinstance(raw, dict) else raw
    return [(k, v if isinstance(v, bytes) else (v or "").encode()) for k, v in items]
