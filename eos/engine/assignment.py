"""Which partitions this member owns, since when, and which it has read to the end.

Plain data: the rebalance callbacks and the run loop tell it what happened; the
processor asks it which records it may still commit.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence

from confluent_kafka import TopicPartition

from eos.engine.records import Consumed, Encoded
from eos.kafka.partitioner import partition_for

__all__ = ["TP", "Assignment", "names", "tps"]

TP = tuple[str, int]


class Assignment:
    """Ownership by generation, and end-of-partition state.

    The invariant exactly-once needs from here: a record is committed only if its
    partition stayed owned, without interruption, since the record was fetched. Every
    assignment of a partition bumps its generation; `fetched()` marks the generations a
    batch was fetched under, and `owned()` keeps only the records whose partition still
    has that generation. (A partition revoked and given back during a backoff restarts
    at its committed offset, so committing its held records would do them twice.)
    """

    def __init__(
        self, inputs: Collection[str] = (), partitions: Callable[[str], int] = lambda _t: 1
    ) -> None:
        """`inputs`: the topics read; `partitions` gives a topic's partition count."""
        self._inputs = inputs
        self._partitions = partitions
        self._owned: set[TP] = set()
        self._generation: dict[TP, int] = {}
        self._fetched: dict[TP, int] = {}
        self._at_end: set[TP] = set()

    # -- ownership -------------------------------------------------------------------------

    @property
    def partitions(self) -> frozenset[TP]:
        return frozenset(self._owned)

    def assign(self, partitions: Iterable[TP]) -> None:
        for tp in partitions:
            self._generation[tp] = self._generation.get(tp, 0) + 1
            self._owned.add(tp)

    def generation(self, tp: TP) -> int:
        """How many times `tp` was assigned to this member (0: never)."""
        return self._generation.get(tp, 0)

    def release(self, partitions: Iterable[TP]) -> set[int]:
        """Forget `partitions`; returns the partition numbers no longer owned on any
        topic (a store partition stays while any input still has that partition here)."""
        gone = set(partitions)
        self._owned -= gone
        self._at_end -= gone
        still = {p for _t, p in self._owned}
        return {p for _t, p in gone} - still

    def fetched(self) -> None:
        """A batch was just fetched: its records belong to the current generations."""
        self._fetched = dict(self._generation)

    def owns(self, tp: TP) -> bool:
        return tp in self._owned and self._generation.get(tp) == self._fetched.get(tp)

    def owned(self, batch: Sequence[Consumed]) -> list[Consumed]:
        """The records of `batch` whose partitions stayed here since they were fetched."""
        verdicts: dict[TP, bool] = {}
        out = []
        for r in batch:
            tp = (r.topic, r.partition)
            ok = verdicts.get(tp)
            if ok is None:
                ok = verdicts[tp] = self.owns(tp)
            if ok:
                out.append(r)
        return out

    # -- end of partition ------------------------------------------------------------------

    def reached_end(self, tp: TP) -> None:
        self._at_end.add(tp)

    def read_from(self, tp: TP) -> None:
        self._at_end.discard(tp)

    def rewound(self, partitions: Iterable[TP]) -> None:
        """The consumer was sought back on `partitions`: what it reported as their end
        lies behind records it will read again."""
        self._at_end.difference_update(partitions)

    def wrote(self, outputs: Sequence[Encoded]) -> None:
        """Records we just wrote to one of our own inputs are still to be read: their
        partitions are no longer at their end. A keyed record's partition is the one our
        producer's murmur2 partitioner picks."""
        for out in outputs:
            if out.topic not in self._inputs:
                continue
            if out.partition >= 0:
                self._at_end.discard((out.topic, out.partition))
            elif out.key is not None:
                count = self._partitions(out.topic)
                self._at_end.discard((out.topic, partition_for(out.key, count)))
            else:
                self._at_end = {tp for tp in self._at_end if tp[0] != out.topic}

    def caught_up(self, got_records: bool) -> bool:
        """Every owned partition has reported its end (under read_committed, the last
        stable offset) and the last poll brought nothing."""
        return not got_records and bool(self._owned) and self._owned <= self._at_end


def tps(partitions: Sequence[TopicPartition]) -> list[TP]:
    return [(p.topic, p.partition) for p in partitions]


def names(partitions: Sequence[TopicPartition]) -> str:
    """topic[partition], ... for messages."""
    return ", ".join(f"{p.topic}[{p.partition}]" for p in partitions) or "nothing"
