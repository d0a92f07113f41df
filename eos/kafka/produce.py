"""A record ready to produce, and the one function that hands it to a producer."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from typing import Any, NamedTuple, cast

from confluent_kafka import KafkaError, Message, Producer

__all__ = ["Encoded", "LastOffsets", "produce"]


class Encoded(NamedTuple):
    """A record ready to produce."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    partition: int = -1  # -1: the producer's partitioner picks it from the key


def produce(
    producer: Producer,
    out: Encoded,
    on_delivery: Callable[[KafkaError | None, Message], None] | None = None,
    wait_s: float | None = None,
    deadline: float | None = None,
) -> None:
    """Produce one record, waiting for room when the local queue is full; BufferError
    when there is still none after `wait_s` seconds, or at `deadline` (time.monotonic);
    neither: wait as long as it takes. The clock is read only when the queue is full."""
    give_up = deadline
    topic, key, value, headers, partition = out
    # Most records have no headers, partition or callback: the client parses each
    # argument given, a third of its cost for such a record.
    plain = not headers and partition < 0 and on_delivery is None
    while True:
        try:
            if plain:
                producer.produce(topic, value=value, key=key)
            else:
                producer.produce(
                    topic,
                    value=value,
                    key=key,
                    headers=cast(Any, headers),
                    partition=partition,
                    on_delivery=on_delivery,
                )
            return
        except BufferError:
            now = time.monotonic()
            if give_up is None and wait_s is not None:
                give_up = now + wait_s
            if give_up is not None and now > give_up:
                raise
            producer.poll(0.05)  # let deliveries drain


class LastOffsets:
    """The offsets the cluster gave the last record of each watched topic-partition in a
    set of records. A partition's records are delivered in order, so only the last one of
    each carries a delivery callback; records with no explicit partition are not watched."""

    def __init__(self, topics: Collection[str]) -> None:
        self._topics = frozenset(topics)
        self._offsets: dict[tuple[str, int], int] = {}

    def last_of_each(self, outputs: Sequence[Encoded]) -> set[int]:
        """Indexes into `outputs` of the records to watch; forgets earlier offsets."""
        self._offsets = {}
        if not self._topics:
            return set()
        last: dict[tuple[str, int], int] = {}
        for i, out in enumerate(outputs):
            if out.topic in self._topics and out.partition >= 0:
                last[(out.topic, out.partition)] = i
        return set(last.values())

    def on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self._offsets[(msg.topic() or "", msg.partition() or 0)] = msg.offset() or 0

    @property
    def offsets(self) -> dict[tuple[str, int], int]:
        return dict(self._offsets)
