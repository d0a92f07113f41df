"""The next batch: records read from the consumer, taken fairly across partitions.

librdkafka queues each partition's fetched records in chunks of up to
max.partition.fetch.bytes (1 MiB: thousands of records), one partition after another.
Taken in that order, a member that takes over a backlog works through one partition's
chunk after another, and the last partition waits seconds for its first commit; and a
partition that falls behind holds up the others' records the same way. So records are
read ahead into a queue per partition and a batch takes an equal share from every
partition that has records, as Kafka Streams' tasks take turns. Reading ahead goes on
only while some assigned partition has nothing queued (up to `read_ahead` batches), so
a member keeping up holds about one batch, and a record waits for no more than that.

Invariant: a partition's queue holds exactly the records after the last one taken, up
to the consumer's position, in offset order. So a queue goes whenever the consumer's
position for its partition moves elsewhere: when the partition is released (its next
owner starts from the committed offset) and when the processor rewinds to the committed
offsets (`clear`). Kept past either, a record would be processed twice.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from itertools import islice

from confluent_kafka import Consumer, KafkaError, TopicPartition

from eos.engine.rebalance import Rebalance
from eos.engine.records import Consumed
from eos.kafka.offsets import TP

__all__ = ["Intake", "fair_share"]


def fair_share(queues: dict[TP, deque[Consumed]], limit: int) -> list[Consumed]:
    """Up to `limit` records: an equal share from each partition with records, then what
    is left of the limit from them in turn. Each partition's records stay in order."""
    parts = [q for q in queues.values() if q]
    if len(parts) == 1 and len(parts[0]) <= limit:
        whole = list(parts[0])
        parts[0].clear()
        return whole
    batch: list[Consumed] = []
    share = max(limit // max(len(parts), 1), 1)
    for want in (share, limit):
        for q in parts:
            for _ in range(min(want, len(q), limit - len(batch))):
                batch.append(q.popleft())
    return batch


class Intake:
    def __init__(
        self,
        consumer: Consumer,
        rebalance: Rebalance,
        on_error: Callable[[KafkaError, TP], None],
        read_ahead: int = 8,
    ) -> None:
        self._consumer = consumer
        self._rebalance = rebalance
        self._on_error = on_error
        self._read_ahead = read_ahead
        self._queues: dict[TP, deque[Consumed]] = {}
        self._queued = 0

    @property
    def queued(self) -> int:
        return self._queued

    def next(self, limit: int, wait: float) -> list[Consumed]:
        """Read what the consumer has (waiting up to `wait` when nothing is queued), then
        a fair batch of up to `limit` records."""
        full = self._read(limit, 0.0 if self._queued else wait)
        while full and self._queued < self._read_ahead * limit and self._missing():
            full = self._read(limit, 0.0)
        # partitions released meanwhile were dropped; owned() also drops the records of
        # a partition that changed hands inside the read
        taken = fair_share(self._queues, limit)
        self._queued -= len(taken)
        return self._rebalance.assignment.owned(taken)

    def upcoming(self, limit: int) -> list[Consumed]:
        """Records the next batch is likely to take (a fair share of `limit` from each
        partition's queue), left queued: for work done on them ahead."""
        parts = [q for q in self._queues.values() if q]
        share = max(limit // max(len(parts), 1), 1)
        return [rec for q in parts for rec in islice(q, share)]

    def _missing(self) -> bool:
        """Some assigned partition has nothing queued: reading on may find its records
        behind another's chunk. Once every one has some, a batch can be fair."""
        queued = sum(1 for q in self._queues.values() if q)
        return queued < len(self._rebalance.assignment.partitions)

    def drop(self, partitions: Iterable[TopicPartition]) -> None:
        """The partitions were released: their queued records are the next owner's."""
        for p in partitions:
            q = self._queues.pop((p.topic, p.partition), None)
            if q:
                self._queued -= len(q)

    def clear(self) -> None:
        """The consumer was rewound to the committed offsets: read everything again."""
        self._queues.clear()
        self._queued = 0

    def _read(self, limit: int, wait: float) -> bool:
        """Queue what one consume brings; True when it brought `limit` (more may wait).

        Records come in runs of one partition: whether its records are processed now,
        and its queue, are looked up once per run (nothing changes them inside the
        loop: rebalance callbacks run inside consume). An event (an end of partition)
        ends a run, so records after it clear the end mark again."""
        messages = self._consumer.consume(limit, wait)
        rebalance = self._rebalance
        read_from = rebalance.assignment.read_from
        current: TP | None = None
        q: deque[Consumed] | None = None  # the run's partition's queue
        queued = 0
        for msg in messages:
            err = msg.error()
            if err is not None:
                self._on_error(err, (msg.topic() or "", msg.partition() or 0))
                current = None  # an end-of-partition: records after it mark a new run
                continue
            rec = Consumed.from_message(msg)
            tp = (rec.topic, rec.partition)
            if tp != current:
                current, q = tp, None  # None: held, read again from its first record
                if rebalance.may_process(rec):
                    read_from(tp)
                    q = self._queues.get(tp)
                    if q is None:
                        q = self._queues[tp] = deque()
            if q is not None:
                q.append(rec)
                queued += 1
        self._queued += queued
        rebalance.assignment.fetched()
        return len(messages) >= limit
