"""Batches take from every partition with records, not one partition's chunk after
another; read-ahead records go when their partition's position moves elsewhere."""

from __future__ import annotations

from collections import deque
from typing import Any, cast

from confluent_kafka import Consumer, KafkaError, TopicPartition

from eos.engine.intake import Intake, fair_share
from eos.engine.rebalance import Rebalance
from eos.engine.records import Consumed

IN = "in"


class FakeMessage:
    def __init__(self, partition: int, offset: int) -> None:
        self._p, self._o = partition, offset

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return IN

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def timestamp(self) -> tuple[int, int]:
        return 1, 0

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes:
        return b"v"

    def headers(self) -> None:
        return None


class FakeConsumer:
    """Serves librdkafka's order: each partition's chunk whole, one after another."""

    def __init__(self, chunks: list[tuple[int, int]]) -> None:
        self.queue: deque[FakeMessage] = deque(
            FakeMessage(p, o) for p, n in chunks for o in range(n)
        )
        self.consumed = 0

    def consume(self, num: int, timeout: float) -> list[FakeMessage]:
        out = [self.queue.popleft() for _ in range(min(num, len(self.queue)))]
        self.consumed += len(out)
        return out

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        pass

    def incremental_unassign(self, partitions: list[TopicPartition]) -> None:
        pass


def _intake(chunks: list[tuple[int, int]], partitions: int = 4) -> tuple[Intake, FakeConsumer]:
    fake = FakeConsumer(chunks)
    consumer = cast(Consumer, fake)
    rebalance = Rebalance([IN], consumer)
    rebalance.assigned(consumer, [TopicPartition(IN, p) for p in range(partitions)])

    def on_error(err: KafkaError, tp: Any) -> None:
        raise AssertionError(err)

    return Intake(consumer, rebalance, on_error), fake


def _by_partition(batch: list[Consumed]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for r in batch:
        out.setdefault(r.partition, []).append(r.offset)
    return out


def test_a_backlog_batch_takes_an_equal_share_of_every_partition() -> None:
    intake, _ = _intake([(0, 3000), (1, 3000), (2, 3000), (3, 3000)])
    batch = intake.next(2000, 0.1)
    assert {p: len(o) for p, o in _by_partition(batch).items()} == {0: 500, 1: 500, 2: 500, 3: 500}


def test_each_partition_keeps_its_order_across_batches() -> None:
    intake, _ = _intake([(0, 3000), (1, 100)])
    seen: dict[int, list[int]] = {0: [], 1: []}
    while batch := intake.next(1000, 0.0):
        for p, offsets in _by_partition(batch).items():
            seen[p].extend(offsets)
    assert seen == {0: list(range(3000)), 1: list(range(100))}


def test_a_short_partition_leaves_its_share_to_the_others() -> None:
    intake, _ = _intake([(0, 3000), (1, 100)])
    batch = intake.next(2000, 0.0)
    assert {p: len(o) for p, o in _by_partition(batch).items()} == {0: 1900, 1: 100}


def test_read_ahead_is_bounded() -> None:
    intake, fake = _intake([(0, 100_000)])  # partitions 1-3 never show up
    intake.next(2000, 0.0)
    assert fake.consumed == 8 * 2000
    assert intake.queued == 7 * 2000


def test_no_read_ahead_once_every_partition_has_records() -> None:
    intake, fake = _intake([(0, 500), (1, 500), (2, 500), (3, 500), (0, 100_000)])
    intake.next(2000, 0.0)
    assert fake.consumed == 2000 and intake.queued == 0


def test_a_released_partition_drops_its_read_ahead() -> None:
    intake, _ = _intake([(0, 5000), (1, 5000)], partitions=2)
    intake.next(1000, 0.0)
    assert intake.queued > 0
    intake.drop([TopicPartition(IN, 0)])
    assert intake.queued == 500  # partition 1's, read ahead behind partition 0's chunk


def test_a_rewind_drops_everything_read_ahead() -> None:
    intake, fake = _intake([(0, 5000)])
    intake.next(1000, 0.0)
    intake.clear()
    fake.queue.clear()  # the consumer now reads from the committed offsets: nothing new
    assert intake.next(1000, 0.0) == [] and intake.queued == 0


def test_fair_share_with_no_records_is_empty() -> None:
    assert fair_share({}, 100) == []


class EndOfPartition(FakeMessage):
    def error(self) -> KafkaError:  # type: ignore[override]
        return KafkaError(KafkaError._PARTITION_EOF)


def test_a_record_after_its_partitions_end_in_one_read_clears_the_end() -> None:
    fake = FakeConsumer([])
    fake.queue.extend([FakeMessage(0, 0), EndOfPartition(0, 1), FakeMessage(0, 1)])
    consumer = cast(Consumer, fake)
    rebalance = Rebalance([IN], consumer)
    rebalance.assigned(consumer, [TopicPartition(IN, 0)])
    assignment = rebalance.assignment

    def on_error(err: KafkaError, tp: Any) -> None:
        assert err.code() == KafkaError._PARTITION_EOF
        assignment.reached_end(tp)

    intake = Intake(consumer, rebalance, on_error)
    assert [r.offset for r in intake.next(10, 0)] == [0, 1]
    assert not assignment.caught_up(False)  # offset 1 came after the end was reported


def test_upcoming_records_are_a_share_of_each_queue_left_in_place() -> None:
    intake, _ = _intake([(0, 3000), (1, 3000)], partitions=2)
    intake.next(1000, 0.0)
    queued = intake.queued
    upcoming = intake.upcoming(1000)
    assert {p: len(o) for p, o in _by_partition(upcoming).items()} == {0: 500, 1: 500}
    assert intake.queued == queued
    following = intake.next(1000, 0.0)
    assert [r.offset for r in upcoming] == [r.offset for r in following]
    assert all(a is b for a, b in zip(upcoming, following, strict=True))
