"""A consumer group's lag per partition, as `eos lag` shows it: the committed offset, the
last stable offset (what a read_committed consumer can read), the high watermark, the
lag (LSO minus committed: records the group has still to process) and the age of the
oldest record it has not processed yet.

The age is the timestamp of the first committed record at or after the group's offset,
read by a consumer that is assigned the partition and never joins or commits for the
group: the lag alone says nothing of how long a payment has waited.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, TIMESTAMP_NOT_AVAILABLE, Consumer, TopicPartition

from eos.kafka.clients import connection_config
from eos.kafka.offsets import TP, Offsets

__all__ = ["PartitionLag", "group_lag", "oldest_timestamps", "without_records", "work_behind"]


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int  # negative: the group has committed nothing here
    last_stable: int
    high_watermark: int
    oldest_age_s: float | None  # None: nothing to process, or its timestamp unknown

    @property
    def tp(self) -> TP:
        return (self.topic, self.partition)

    @property
    def lag(self) -> int:
        return max(self.last_stable - max(self.committed, 0), 0)

    @property
    def open_transaction(self) -> bool:
        """Records past the LSO: a producer's transaction is open on this partition."""
        return self.high_watermark > self.last_stable


def group_lag(
    offsets: Offsets,
    config: Mapping[str, Any],
    group: str,
    topics: Iterable[str],
    *,
    now: Callable[[], float] = time.time,
    timeout: float = 5.0,
) -> list[PartitionLag]:
    """Where `group` stands on every partition of `topics`, in topic and partition order."""
    partitions = offsets.partitions(topics)
    # Negative where nothing is committed (librdkafka says -1001): -1 throughout.
    committed = offsets.committed(group, partitions, stable=False)
    stable = offsets.last_stable(partitions)
    high = offsets.high_watermarks(partitions)
    rows = [
        PartitionLag(tp[0], tp[1], max(committed[tp], -1), stable[tp], high[tp], None)
        for tp in partitions
    ]
    behind = {r.tp: r.committed for r in rows if r.lag}
    stamps = oldest_timestamps(config, behind, stable, timeout=timeout)
    wall = now()
    return [
        replace(r, oldest_age_s=max(wall - stamps[r.tp] / 1000, 0.0)) if r.tp in stamps else r
        for r in rows
    ]


def oldest_timestamps(
    config: Mapping[str, Any],
    start: Mapping[TP, int],
    ends: Mapping[TP, int],
    *,
    timeout: float = 5.0,
) -> dict[TP, int]:
    """The timestamp (ms) of the first committed record at or after each partition's
    offset in `start` (negative: from the log's start) and before its end in `ends`. A
    partition with none (only aborted records and markers left), whose record does not
    arrive within `timeout`, or that carries no timestamp, is left out."""
    return _first_committed(config, start, ends, timeout)[0]


def without_records(
    config: Mapping[str, Any],
    start: Mapping[TP, int],
    ends: Mapping[TP, int],
    *,
    timeout: float = 5.0,
) -> set[TP]:
    """The partitions of `start` that hold no committed record from their offset in
    `start` to their end in `ends`: what lies there is aborted records and transaction
    markers only (a zombie's aborted writes after the last input, say), no work."""
    return _first_committed(config, start, ends, timeout)[1]


def _first_committed(
    config: Mapping[str, Any], start: Mapping[TP, int], ends: Mapping[TP, int], timeout: float
) -> tuple[dict[TP, int], set[TP]]:
    """Per partition of `start`, read_committed from its offset: the first record's
    timestamp where it has one, and the set of partitions read to their end with no
    record returned. A partition in neither did not answer within `timeout`."""
    if not start:
        return {}, set()
    consumer = Consumer(
        {
            **connection_config(config),
            "group.id": "eos-lag-reader",  # assigned, never subscribed: never joins
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
        }
    )
    found: dict[TP, int] = {}
    empty: set[TP] = set()
    try:
        consumer.assign(
            [TopicPartition(t, p, o if o >= 0 else OFFSET_BEGINNING) for (t, p), o in start.items()]
        )
        deadline = time.monotonic() + timeout
        waiting = set(start)
        while waiting and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None or msg.error() is not None:
                # Read past the end with nothing returned: aborted records only.
                at = consumer.position([TopicPartition(*tp) for tp in sorted(waiting)])
                drained = {
                    (p.topic, p.partition) for p in at if p.offset >= ends[(p.topic, p.partition)]
                }
                empty |= drained
                waiting -= drained
                continue
            tp = (msg.topic() or "", msg.partition() or 0)
            kind, stamp = msg.timestamp()
            if tp in waiting:
                waiting.discard(tp)
                consumer.pause([TopicPartition(*tp)])
                if kind != TIMESTAMP_NOT_AVAILABLE:
                    found[tp] = stamp
    finally:
        consumer.close()
    return found, empty


def work_behind(
    offsets: Offsets,
    config: Mapping[str, Any],
    group: str,
    partitions: Sequence[TP],
    stable: bool = True,
) -> tuple[dict[TP, int], list[tuple[int, int]]]:
    """Per partition, what `group` has still to process: its lag to the end a
    read_committed consumer sees, but none where that lag holds no committed record.
    After a zombie's aborted writes (a processor resumed from SIGSTOP once its partitions
    had moved on) with no input after them, nobody has a record to read there, so nobody
    commits past them. Also each partition's (committed, end) pair, to tell whether
    anything moved. `stable`: committed offsets as require_stable asks them."""
    committed = offsets.committed(group, partitions, stable=stable)
    ends = offsets.last_stable(partitions)
    snapshot = [(committed.get(tp, -1), ends[tp]) for tp in partitions]
    lags = {tp: max(ends[tp] - max(committed.get(tp, -1), 0), 0) for tp in partitions}
    behind = {tp: committed.get(tp, -1) for tp, n in lags.items() if n > 1}
    idle = without_records(config, behind, ends) if behind else set()
    return {tp: 0 if tp in idle else n for tp, n in lags.items()}, snapshot
