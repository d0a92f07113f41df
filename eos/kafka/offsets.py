"""Where partitions stand: their end offsets, a group's committed offsets, and the lag
between them. Every offset and lag figure in the project comes from here.

The two ends of a partition differ while a transaction is open: the high watermark
counts every record written, the last stable offset (LSO) stops before the first record
of a transaction still open. A read_committed consumer reads up to the LSO. The lag of a
group is, per partition, the end minus the committed offset (a partition with no
committed offset yet counts from 0).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from eos.kafka.clients import connection_config
from eos.kafka.errors import STALE_LEADER_ERRORS, kafka_error
from eos.kafka.retry import settled

__all__ = [
    "TP",
    "Offsets",
    "committed_positions",
    "consumer_lag",
    "lag",
    "open_transactions",
    "rewind",
    "total",
]

TP = tuple[str, int]

# Errors after which a partition's leader is not known to the client: a new one asks.
_GONE_BROKER = frozenset({KafkaError._NOENT, KafkaError._DESTROY_BROKER})


def lag(committed: Mapping[TP, int], ends: Mapping[TP, int]) -> int:
    """Records between each partition's committed offset and its end, summed."""
    return sum(max(end - max(committed.get(tp, 0), 0), 0) for tp, end in ends.items())


def total(offsets: Mapping[TP, int]) -> int:
    """Offsets summed, a missing one (negative: none committed) counting as 0."""
    return sum(max(offset, 0) for offset in offsets.values())


def open_transactions(stable: Mapping[TP, int], written: Mapping[TP, int]) -> list[TP]:
    """Partitions with records past their last stable offset: a transaction is open."""
    return sorted(tp for tp, end in written.items() if end > stable.get(tp, end))


def consumer_lag(consumer: Consumer, partitions: Iterable[TP]) -> int | None:
    """The lag of a consumer's own position on `partitions`, from the watermarks its
    fetches already brought (no request to the broker). None (unknown) while a partition
    has had no fetch answer: counted as 0, one the client never fetched would hide."""
    positions = consumer.position([TopicPartition(t, p) for t, p in sorted(partitions)])
    at: dict[TP, int] = {}
    ends: dict[TP, int] = {}
    for tp in positions:
        _low, high = consumer.get_watermark_offsets(tp, cached=True)
        if high < 0:
            return None
        if tp.offset >= 0:
            at[(tp.topic, tp.partition)] = tp.offset
            ends[(tp.topic, tp.partition)] = high
    return lag(at, ends)


class Offsets:
    """Asks the cluster where partitions stand: topics and group offsets through one
    admin client, committed offsets and partition ends through consumers that never
    join a group (see `committed` and `_ends` for why not the admin API)."""

    def __init__(self, config: Mapping[str, Any], timeout: float = 10.0) -> None:
        self._config = connection_config(config)
        self._admin: AdminClient | None = AdminClient(self._config)
        self._timeout = timeout
        self._consumers: dict[tuple[str, bool], Consumer] = {}
        self._readers: dict[bool, Consumer] = {}  # by read_committed: partition ends

    def partitions(self, topics: Iterable[str]) -> list[TP]:
        """Every partition of `topics`, in order; KeyError names a topic that is missing."""
        meta = self._client().list_topics(timeout=self._timeout).topics
        out: list[TP] = []
        for topic in topics:
            info = meta.get(topic)
            if info is None or info.error is not None:
                raise KeyError(f"topic {topic} does not exist")
            out += [(topic, p) for p in sorted(info.partitions)]
        return out

    def group_topics(self, group: str) -> list[str]:
        """The topics `group` has committed offsets on, sorted (none: an empty list)."""
        future = self._client().list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group)], request_timeout=self._timeout
        )[group]
        found = settled(lambda: future.result(timeout=self._timeout), self._timeout)
        return sorted({tp.topic for tp in found.topic_partitions or [] if tp.offset >= 0})

    def high_watermarks(self, partitions: Iterable[TP]) -> dict[TP, int]:
        """Each partition's end counting every record written (open transactions too)."""
        return self._ends(partitions, IsolationLevel.READ_UNCOMMITTED)

    def log_starts(self, partitions: Iterable[TP]) -> dict[TP, int]:
        """Each partition's first offset still in the log (retention moves it on)."""
        return self._ends(partitions, IsolationLevel.READ_UNCOMMITTED, earliest=True)

    def last_stable(self, partitions: Iterable[TP]) -> dict[TP, int]:
        """Each partition's end as a read_committed consumer sees it."""
        return self._ends(partitions, IsolationLevel.READ_COMMITTED)

    def committed(self, group: str, partitions: Iterable[TP], stable: bool = True) -> dict[TP, int]:
        """The group's committed offset per partition (negative where it has none).
        Stable: an offset still inside an open transaction is waited for; not stable:
        the broker answers at once with the offsets of committed transactions only.

        Asked through a consumer of the group that never joins it, not the admin API:
        librdkafka crashes the process when an admin client's offset fetch meets a
        coordinator that is not ready yet (a cold broker)."""
        consumer = self._consumers.get((group, stable))
        if consumer is None:
            self._client()  # closed: no new consumer
            consumer = self._consumers[(group, stable)] = Consumer(
                {
                    **self._config,
                    "group.id": group,
                    # read_committed makes librdkafka set require_stable on its fetch
                    "isolation.level": "read_committed" if stable else "read_uncommitted",
                    "enable.auto.commit": False,
                }
            )
        return committed_positions(consumer, partitions, self._timeout)

    def __enter__(self) -> Offsets:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close its clients. The admin client goes with its last reference: kept, it
        would go on reconnecting (and logging so) after a cluster it outlives stops."""
        for consumer in [*self._consumers.values(), *self._readers.values()]:
            consumer.close()
        self._consumers.clear()
        self._readers.clear()
        self._admin = None

    def _client(self) -> AdminClient:
        if self._admin is None:
            raise RuntimeError("offsets reader used after close()")
        return self._admin

    def _ends(
        self, partitions: Iterable[TP], level: IsolationLevel, earliest: bool = False
    ) -> dict[TP, int]:
        """Asked through a consumer that never joins a group (ListOffsets at its own
        isolation level), not the admin API: while a partition's leader is down,
        librdkafka's admin client retries its connection without backoff for as long as
        the request waits (most of a core), and a fault test's lag samples would take
        that core from the cluster under test. The consumer's metadata is refreshed
        first, so a leader that moved is asked, not the one that is gone."""
        wanted = sorted(set(partitions))
        if not wanted:
            return {}
        committed_only = level == IsolationLevel.READ_COMMITTED
        spec = OFFSET_BEGINNING if earliest else OFFSET_END  # ListOffsets' -2 and -1

        def ask() -> dict[TP, int]:
            reader = self._reader(committed_only)
            try:
                for topic in sorted({t for t, _ in wanted}):
                    reader.list_topics(topic, timeout=self._timeout)
                found = reader.offsets_for_times(
                    [TopicPartition(t, p, spec) for t, p in wanted], timeout=self._timeout
                )
                for tp in found:
                    if tp.error is not None:
                        raise KafkaException(tp.error)
            except KafkaException as exc:
                code = kafka_error(exc).code()
                if code in STALE_LEADER_ERRORS or code in _GONE_BROKER:
                    self._drop_reader(committed_only)  # a new client asks afresh
                if code in _GONE_BROKER:
                    # A broker handle dropped, or no leader known: a partition between
                    # leaders, which settles; librdkafka does not flag it so.
                    raise KafkaException(
                        KafkaError(KafkaError.LEADER_NOT_AVAILABLE, kafka_error(exc).str())
                    ) from exc
                raise
            return {(tp.topic, tp.partition): tp.offset for tp in found}

        return settled(ask, self._timeout)

    def _reader(self, committed_only: bool) -> Consumer:
        self._client()  # closed: no new client
        reader = self._readers.get(committed_only)
        if reader is None:
            reader = self._readers[committed_only] = Consumer(
                {
                    **self._config,
                    "group.id": f"eos-offsets-{uuid.uuid4().hex[:8]}",  # never joined
                    "isolation.level": "read_committed" if committed_only else "read_uncommitted",
                    "enable.auto.commit": False,
                }
            )
        return reader

    def _drop_reader(self, committed_only: bool) -> None:
        reader = self._readers.pop(committed_only, None)
        if reader is not None:
            reader.close()


def committed_positions(
    consumer: Consumer, partitions: Iterable[TP], timeout: float = 30.0
) -> dict[TP, int]:
    """The consumer's group's committed offsets on `partitions` (stable: librdkafka's
    read_committed consumer waits for offsets inside an open transaction); a negative
    offset where none is committed. Settling errors are asked again until `timeout`.

    A partition answered with an error (UNSTABLE_OFFSET_COMMIT once librdkafka's own
    retries are spent, say) carries no offset; read as "none committed", it would send a
    rewind back to auto.offset.reset. It raises instead, as the whole call would."""
    tps = [TopicPartition(t, p) for t, p in partitions]
    if not tps:
        return {}

    def ask() -> list[TopicPartition]:
        found: list[TopicPartition] = consumer.committed(tps, timeout=timeout)
        for tp in found:
            if tp.error is not None:
                raise KafkaException(tp.error)
        return found

    found = settled(ask, timeout)
    return {(tp.topic, tp.partition): tp.offset for tp in found}


def rewind(consumer: Consumer, committed: Mapping[TP, int], earliest: bool) -> None:
    """Seek each partition to its committed offset; one with none committed to where
    auto.offset.reset would start it."""
    start = OFFSET_BEGINNING if earliest else OFFSET_END
    for (topic, partition), offset in committed.items():
        consumer.seek(TopicPartition(topic, partition, offset if offset >= 0 else start))
