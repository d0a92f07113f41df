"""A lost producer is replaced; the batch in doubt is settled by the committed offsets."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import cast

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from eos.config import EngineSettings
from eos.engine import recovery
from eos.engine.api import InputRecord, OutputRecord
from eos.engine.batch import BatchRunner
from eos.engine.records import Encoded
from eos.engine.recovery import FenceWatch, Recovery, committed_through
from eos.engine.state import StateStore
from eos.engine.stats import Stats
from eos.engine.transaction import ProducerLost
from eos.kafka.errors import ErrorClass, TransactionError
from eos.kafka.metadata import twin_member
from tests.unit.engine.test_processor import (
    IN,
    OUT,
    FakeCommitter,
    FakeConsumer,
    _processor,
    _records,
)
from tests.unit.stores import make_ready


class RewindingConsumer(FakeConsumer):
    """Also answers `committed` (what the group committed) and records seeks."""

    def __init__(self, partitions: set[tuple[str, int]], committed: dict[int, int]) -> None:
        super().__init__(partitions)
        self.committed_at = committed
        self.sought: list[tuple[str, int, int]] = []

    def committed(self, tps: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [TopicPartition(t.topic, t.partition, self.committed_at[t.partition]) for t in tps]

    def seek(self, partition: TopicPartition) -> None:
        self.sought.append((partition.topic, partition.partition, partition.offset))


class LosingCommitter(FakeCommitter):
    """Loses its producer on the first commit (after `commits_anyway`: the commit in
    doubt went through), then commits normally; counts recoveries."""

    def __init__(self, commits_anyway: bool) -> None:
        super().__init__(lambda _o: None)
        self.commits_anyway = commits_anyway
        self.recoveries = 0
        self.lost = False

    def commit(self, offsets: Sequence[TopicPartition], outputs: Sequence[Encoded]) -> None:
        if not self.lost:
            self.lost = True
            if self.commits_anyway:
                super().commit(offsets, outputs)
            raise ProducerLost("commit_transaction", "no answer within 65s")
        super().commit(offsets, outputs)

    def recover(self) -> None:
        self.recoveries += 1


def _counting(store: StateStore):  # type: ignore[no-untyped-def]
    def transform(record: InputRecord) -> list[OutputRecord]:
        store.put(record.partition, "n", (store.get(record.partition, "n") or 0) + 1)
        return [OutputRecord(OUT, record.key, b"out:" + (record.value or b""))]

    return transform


@pytest.mark.parametrize("commits_anyway", [False, True])
def test_a_lost_producer_is_replaced_and_the_partitions_rewound_to_the_committed_offsets(
    commits_anyway: bool,
) -> None:
    records = _records([b"a", b"b", b"c", b"d"])  # partition 0: 100, 101; partition 1: 100, 101
    committer = LosingCommitter(commits_anyway)
    processor, _ = _processor(committer, records)
    # The group's offsets after the new producer settled the transaction in doubt.
    done = {0: 102, 1: 102} if commits_anyway else {0: 100, 1: 100}
    consumer = RewindingConsumer({(IN, 0), (IN, 1)}, done)
    processor.consumer = cast(Consumer, consumer)
    processor._recovery._consumer = cast(Consumer, consumer)
    store = StateStore("count", "count.changelog")
    make_ready(store, [0, 1])
    processor.stores = [store]
    processor._recovery._stores = [store]
    processor.runner = BatchRunner(_counting(store), {IN: None}, {}, 5, [store])

    processor._process_batch(records)

    assert committer.recoveries == 1
    assert processor.stats.recoveries == 1
    # Never retried as it was: rewound, so what did not commit is read again.
    assert len(committer.commits) == (1 if commits_anyway else 0)
    assert sorted(consumer.sought) == [(IN, 0, done[0]), (IN, 1, done[1])]
    # The batch's state is applied only if its transaction committed.
    assert store.get(0, "n") == (2 if commits_anyway else None)
    assert processor.stats.records == (4 if commits_anyway else 0)


def test_a_failing_abort_replaces_the_producer_instead_of_stopping() -> None:
    records = _records([b"a", b"b"])

    class AbortFails(FakeCommitter):
        def abort(self) -> None:
            super().abort()
            raise ProducerLost("abort_transaction", "Invalid txn state", KafkaError(48))

    committer = AbortFails(lambda _o: ErrorClass.ABORTABLE, code=KafkaError._TIMED_OUT)
    processor, _ = _processor(committer, records)
    consumer = RewindingConsumer({(IN, 0), (IN, 1)}, {0: 100, 1: 100})
    processor.consumer = cast(Consumer, consumer)
    processor._recovery._consumer = cast(Consumer, consumer)

    processor._process_batch(records)

    assert processor.stats.recoveries == 1
    assert committer.commits == []
    assert sorted(consumer.sought) == [(IN, 0, 100), (IN, 1, 100)]


def test_a_fence_with_a_twin_in_the_group_stops_the_older_instance_at_once() -> None:
    records = _records([b"a"])

    class Fenced(FakeCommitter):
        def commit(self, offsets: Sequence[TopicPartition], outputs: Sequence[Encoded]) -> None:
            raise ProducerLost("commit_transaction", "fenced", KafkaError(KafkaError._FENCED))

    processor, _ = _processor(Fenced(lambda _o: None), records)
    processor._recovery._twin = lambda: "member m-2 on host /10.0.0.7"
    with pytest.raises(TransactionError, match=r"member m-2 on host /10\.0\.0\.7 uses"):
        processor._process_batch(records)
    assert processor.stats.recoveries == 1  # counted, but not replaced: it stops


def test_fences_close_together_stop_the_processor_naming_the_transactional_id() -> None:
    records = _records([b"a"])

    class Fenced(FakeCommitter):
        def commit(self, offsets: Sequence[TopicPartition], outputs: Sequence[Encoded]) -> None:
            raise ProducerLost("commit_transaction", "fenced", KafkaError(KafkaError._FENCED))

    processor, _ = _processor(Fenced(lambda _o: None), records)
    processor._recovery.twin_wait_s = 0  # no twin in the group: decided at once
    consumer = RewindingConsumer({(IN, 0)}, {0: 100})
    processor._recovery._consumer = cast(Consumer, consumer)
    for _ in range(2):
        processor._process_batch(records)  # a fence after a bounce: recovered
    with pytest.raises(TransactionError, match=r"another live process uses transactional\.id"):
        processor._process_batch(records)


def test_fence_watch_counts_only_fences_within_its_window() -> None:
    now = [0.0]
    watch = FenceWatch(limit=3, window_s=60, clock=lambda: now[0])
    assert not watch.fenced()
    now[0] = 30
    assert not watch.fenced()
    now[0] = 100  # both earlier ones fell out of the window
    assert not watch.fenced()
    now[0] = 110
    assert not watch.fenced()
    now[0] = 120
    assert watch.fenced()  # three within 60 s


def test_committed_through_reads_the_batch_as_committed_only_if_every_offset_is_in() -> None:
    batch = [TopicPartition(IN, 0, 102), TopicPartition(IN, 1, 101)]
    assert committed_through(batch, {(IN, 0): 102, (IN, 1): 101})
    assert not committed_through(batch, {(IN, 0): 102, (IN, 1): 100})
    assert committed_through(batch, {(IN, 0): 102})  # partition 1 moved away meanwhile
    assert not committed_through(batch, {})


def _starting(
    twin: Callable[[], str | None], back_off: Callable[[int], None], **settings: object
) -> Recovery:
    consumer = cast(Consumer, FakeConsumer(set()))
    committer = FakeCommitter(lambda _o: None)
    after_crash = bool(settings.pop("after_crash", True))
    settings.setdefault("partition_assignment_strategy", "range")  # eager: see the wait
    config = EngineSettings(**settings)  # type: ignore[arg-type]
    return Recovery(committer, consumer, [], Stats(), config, back_off, twin, after_crash)


def test_a_restart_joins_only_once_its_earlier_run_has_left_the_group() -> None:
    answers = iter(["member m-1 on host /10.0.0.7"] * 3 + [None])
    asked: list[str | None] = []
    waits: list[int] = []

    def twin() -> str | None:
        asked.append(next(answers))
        return asked[-1]

    _starting(twin, waits.append, session_timeout_ms=55_000).start()
    assert asked[-1] is None and len(asked) == 4
    assert len(waits) == 3  # one wait per sighting of the earlier run, none after


def test_the_wait_for_an_earlier_run_is_bounded_and_only_for_eager_dynamic_groups(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(recovery, "PREDECESSOR_MARGIN_S", 0.0)
    asked: list[str] = []

    def twin() -> str:
        asked.append("member m-1 on host /10.0.0.7")
        return asked[-1]

    _starting(twin, lambda _a: None, static_membership=True).start()  # no wait, no look
    # Incremental rebalancing: the others keep processing while the join is pending.
    _starting(twin, lambda _a: None, partition_assignment_strategy="cooperative-sticky").start()
    # A clean end of the earlier run (or none on this host): a member with our id is a
    # live twin elsewhere, which must see us join.
    _starting(twin, lambda _a: None, after_crash=False).start()
    assert asked == []
    started = time.monotonic()
    _starting(
        twin, lambda _a: time.sleep(0.2), session_timeout_ms=1_000, heartbeat_interval_ms=300
    ).start()
    assert len(asked) > 1 and 1 <= time.monotonic() - started < 5  # gave up, joined


def test_a_group_that_cannot_be_described_does_not_hold_the_start() -> None:
    def twin() -> str | None:
        raise KafkaException(KafkaError(KafkaError._TIMED_OUT))

    _starting(twin, lambda _a: pytest.fail("waited")).start()


def test_a_fence_finds_no_twin_in_the_member_ids_this_consumer_had_before_it_rejoined() -> None:
    """After a broker bounce the consumer's session times out and it rejoins under a new
    member id while the group still lists its old one, under the same client.id: that
    member is this process, not a newer twin, and the fence is recovered from."""
    records = _records([b"a"])
    processor, consumer = _processor(FakeCommitter(lambda _o: None), records)
    seen: list[set[str]] = []

    def twin(mine: set[str]) -> str | None:
        seen.append(set(mine))
        return None

    processor._recovery._twin = lambda: twin(processor._members.all())
    assigned: list[list[TopicPartition]] = []
    on_assign = processor._members.noting(lambda _c, partitions: assigned.append(partitions))
    on_assign(cast(Consumer, consumer), [])  # assigned as m-1
    consumer.member = "m-2"  # the session timed out; rejoined
    assert processor._recovery._twin() is None
    assert seen == [{"m-1", "m-2"}]
    assert assigned == [[]]  # the callback itself still ran


class _Group:
    def __init__(self, *members: tuple[str, str]) -> None:
        self.members = [
            SimpleNamespace(member_id=m, client_id=c, host="/127.0.0.1") for m, c in members
        ]

    def result(self, timeout: float) -> _Group:
        return self


class _Admin:
    def __init__(self, group: _Group) -> None:
        self.group = group

    def describe_consumer_groups(self, groups: list[str], **_: object) -> dict[str, _Group]:
        return {groups[0]: self.group}


def test_twin_member_skips_every_member_id_of_ours_and_names_another_with_our_client_id() -> None:
    group = _Group(("eos-a-1", "eos-a"), ("eos-a-2", "eos-a"), ("eos-b-1", "eos-b"))
    admin = cast(AdminClient, _Admin(group))
    assert twin_member(admin, "g", "eos-a", {"eos-a-1", "eos-a-2"}) is None
    assert twin_member(admin, "g", "eos-a", {"eos-a-2"}) == "member eos-a-1 on host /127.0.0.1"
