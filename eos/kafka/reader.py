"""Read whole topics to a fixed end: the high watermark when the read starts.

A read_committed consumer reports end-of-partition at the last stable offset, so a plain
"read until EOF" silently stops before an open transaction. Reading to the high
watermark instead waits for such a transaction to end, or times out saying so.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Collection, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from eos.kafka.errors import is_settling
from eos.kafka.offsets import Offsets
from eos.kafka.retry import settled

# Faster reads of large topics than the defaults: big fetches, no waiting for full ones.
READ_TUNING = {
    "fetch.wait.max.ms": 10,
    "max.partition.fetch.bytes": 16 * 1024 * 1024,
    "fetch.max.bytes": 100 * 1024 * 1024,
    "queued.max.messages.kbytes": 256 * 1024,
}

Handler = Callable[[Message], None]


def read_topics(
    config: Mapping[str, Any],
    handlers: Mapping[str, Handler],
    timeout: float = 120.0,
    isolation: str = "read_committed",
    partitions: Mapping[str, Collection[int]] | None = None,
) -> list[str]:
    """Hand every committed record of each topic to its handler, in offset order per
    partition; returns the topics that do not exist. `partitions` limits a topic's read
    to the partitions it names.

    The snapshot ends at each partition's high watermark when the read starts. Records of
    a transaction still open then are waited for (read_committed holds back everything
    after them until it commits or aborts); TimeoutError when that takes over `timeout`.
    """
    consumer = Consumer(
        {
            **READ_TUNING,
            **config,
            "group.id": f"eos-verify-{uuid.uuid4().hex[:8]}",
            "isolation.level": isolation,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        }
    )
    missing: list[str] = []
    try:
        meta = settled(lambda: consumer.list_topics(timeout=30), timeout).topics
        parts: list[TopicPartition] = []
        for topic in handlers:
            info = meta.get(topic)
            if info is None or not info.partitions:  # a leader being elected still lists them
                missing.append(topic)
                continue
            wanted = partitions.get(topic) if partitions is not None else None
            parts += [
                TopicPartition(topic, p, 0)
                for p in sorted(info.partitions)
                if wanted is None or p in wanted
            ]
        if not parts:
            return missing
        end = Offsets(config, timeout=30).high_watermarks((tp.topic, tp.partition) for tp in parts)
        consumer.assign(parts)
        pending = set(end)
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                stuck = sorted(pending)[:5]
                where = ", ".join(f"{t}[{p}] (up to offset {end[(t, p)]})" for t, p in stuck)
                raise TimeoutError(
                    f"{len(pending)} partition(s) not read to their end within {timeout:.0f}s "
                    f"with read_committed: {where}; is a transaction left open?"
                )
            for msg in consumer.consume(5000, 0.5):
                tp = (msg.topic() or "", msg.partition() or 0)
                if tp not in pending:
                    continue
                offset = msg.offset() or 0
                err = msg.error()
                if err is None and offset < end[tp]:
                    handlers[tp[0]](msg)
                    continue
                if err is not None and err.code() != KafkaError._PARTITION_EOF:
                    if is_settling(err):  # a broker bouncing: the consumer fetches again
                        continue
                    raise RuntimeError(f"reading {tp[0]}[{tp[1]}]: {err.str()}")
                # EOF at or past the end (below it, a transaction is still open), or a
                # record written after the snapshot started: this partition is done.
                if offset >= end[tp]:
                    pending.discard(tp)
                    consumer.pause([TopicPartition(*tp)])
    finally:
        consumer.close()
    return missing
