"""A record ready to produce, and the one function that hands it to a producer."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple, cast

from confluent_kafka import KafkaError, Message, Producer

__all__ = ["Encoded", "produce"]


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
) -> None:
    """Produce one record, waiting for room when the local queue is full; BufferError
    when there is still none after `wait_s` seconds (None: wait as long as it takes)."""
    give_up = None if wait_s is None else time.monotonic() + wait_s
    while True:
        try:
            producer.produce(
                out.topic,
                value=out.value,
                key=out.key,
                headers=cast(Any, out.headers),
                partition=out.partition,
                on_delivery=on_delivery,
            )
            return
        except BufferError:
            if give_up is not None and time.monotonic() > give_up:
                raise
            producer.poll(0.05)  # let deliveries drain
