"""What an assignment does to a stateful member: pause, restore in the loop, resume."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from confluent_kafka import Consumer, TopicPartition

from eos.engine.rebalance import Rebalance
from eos.engine.records import Consumed
from eos.engine.restore import Restorer
from eos.engine.state import StateStore

A, B = "payments", "credits"


class Client:
    """The consumer calls the rebalance makes, recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        self.calls.append(("assign", _tps(partitions)))

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.calls.append(("assign", _tps(partitions)))

    def incremental_unassign(self, partitions: list[TopicPartition]) -> None:
        self.calls.append(("unassign", _tps(partitions)))

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.calls.append(("pause", _tps(partitions)))

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.calls.append(("resume", _tps(partitions)))

    def seek(self, partition: TopicPartition) -> None:
        self.calls.append(("seek", (partition.topic, partition.partition, partition.offset)))


class FakeRestorer:
    """Ready when told: `finish(p)`."""

    def __init__(self) -> None:
        self.wanted: set[int] = set()
        self.done: set[int] = set()
        self.removed: set[int] = set()

    @property
    def busy(self) -> bool:
        return bool(self.wanted)

    def add(self, partitions: Iterable[int]) -> None:
        self.wanted |= set(partitions)

    def remove(self, partitions: Iterable[int]) -> None:
        self.removed |= set(partitions)
        self.wanted -= set(partitions)

    def step(self, _budget: float) -> set[int]:
        ready, self.done = self.done & self.wanted, set()
        self.wanted -= ready
        return ready

    def close(self) -> None:
        pass


def _tps(partitions: list[TopicPartition]) -> list[tuple[str, int]]:
    return sorted((p.topic, p.partition) for p in partitions)


def _record(tp: tuple[str, int], offset: int) -> Consumed:
    return Consumed(tp[0], tp[1], offset, 0, b"k", b"v", [])


def _rebalance(client: Client, restorer: FakeRestorer) -> Rebalance:
    store = StateStore("s", "s.changelog")
    return Rebalance(
        [A, B], cast(Consumer, client), [store], cast(Restorer, restorer), {}, incremental=True
    )


def test_new_partitions_are_not_processed_until_their_stores_are_restored() -> None:
    client, restorer = Client(), FakeRestorer()
    rebalance = _rebalance(client, restorer)
    given = [TopicPartition(t, p) for t in (A, B) for p in (0, 1)]
    rebalance.assigned(cast(Consumer, client), given)
    # Not paused in the callback: a pause right after an assignment can race the
    # client's own start of the partition's fetcher, which is then dropped for good
    # (librdkafka #5591), leaving a partition never fetched.
    assert client.calls == [("assign", _tps(given))]
    assert restorer.wanted == {0, 1}

    # A record that arrives first is not processed: its partition is paused then (its
    # fetcher runs) and read again from that record once the store is ready.
    assert not rebalance.may_process(_record((A, 0), 41))
    assert not rebalance.may_process(_record((A, 0), 42))
    assert client.calls[1:] == [("pause", [(A, 0)])]
    restorer.done = {0}
    rebalance.restore_step()
    # Only what was paused is resumed: a resume can race a fetcher still starting.
    assert client.calls[2:] == [("seek", (A, 0, 41)), ("resume", [(A, 0)])]
    assert rebalance.may_process(_record((B, 0), 7))
    assert not rebalance.may_process(_record((B, 1), 7))


def test_records_held_for_a_restoring_store_keep_a_run_from_being_caught_up() -> None:
    client, restorer = Client(), FakeRestorer()
    rebalance = _rebalance(client, restorer)
    rebalance.assigned(cast(Consumer, client), [TopicPartition(t, 0) for t in (A, B)])
    assert not rebalance.may_process(_record((A, 0), 41))
    # The partition's end comes after its held records, in the same read.
    rebalance.assignment.reached_end((A, 0))
    rebalance.assignment.reached_end((B, 0))
    assert rebalance.holding
    restorer.done = {0}
    rebalance.restore_step()
    assert not rebalance.holding
    assert not rebalance.assignment.caught_up(False)  # sought back to 41: read again
    rebalance.assignment.reached_end((A, 0))
    assert rebalance.assignment.caught_up(False)


def test_a_partition_paused_here_is_resumed_when_it_is_revoked() -> None:
    # The client keeps a pause across a revocation and a later assignment: a partition
    # paused here and revoked before its store was ready would come back never fetched.
    client, restorer = Client(), FakeRestorer()
    rebalance = _rebalance(client, restorer)
    given = [TopicPartition(t, p) for t in (A, B) for p in (0, 1)]
    rebalance.assigned(cast(Consumer, client), given)
    assert not rebalance.may_process(_record((A, 1), 5))
    client.calls.clear()
    rebalance.released([TopicPartition(A, 1), TopicPartition(B, 1)])
    assert client.calls[0] == ("resume", [(A, 1)])
    assert [name for name, _ in client.calls] == ["resume", "unassign"]


def test_a_partition_with_only_some_inputs_here_is_never_restored_nor_processed() -> None:
    client, restorer = Client(), FakeRestorer()
    rebalance = _rebalance(client, restorer)
    rebalance.assigned(cast(Consumer, client), [TopicPartition(A, 0), TopicPartition(A, 1)])
    rebalance.assigned(cast(Consumer, client), [TopicPartition(B, 1)])
    assert restorer.wanted == {1}  # partition 0 has no credits here
    assert not rebalance.may_process(_record((A, 0), 1))


def test_a_revoked_partition_stops_restoring() -> None:
    client, restorer = Client(), FakeRestorer()
    rebalance = _rebalance(client, restorer)
    rebalance.assigned(cast(Consumer, client), [TopicPartition(A, 0), TopicPartition(B, 0)])
    rebalance.released([TopicPartition(B, 0)])
    assert restorer.removed == {0} and not restorer.busy


def _following(client: Client, restorer: FakeRestorer) -> Rebalance:
    store = StateStore("s", "s.changelog")
    return Rebalance(
        [A, B],
        cast(Consumer, client),
        [store],
        cast(Restorer, restorer),
        {},
        incremental=True,
        follow=True,
    )


def test_a_follower_partition_is_assigned_and_revoked_with_the_driving_one() -> None:
    client, restorer = Client(), FakeRestorer()
    rebalance = _following(client, restorer)
    assert rebalance.subscription == [A]  # the group assigns only the driving topic
    rebalance.assigned(cast(Consumer, client), [TopicPartition(A, 0), TopicPartition(A, 2)])
    both = sorted([(A, 0), (A, 2), (B, 0), (B, 2)])
    assert client.calls[0] == ("assign", both)
    assert restorer.wanted == {0, 2}  # whole here at once: nothing is held as split

    gone = rebalance.released([TopicPartition(A, 2)])
    assert _tps(gone) == sorted([(A, 2), (B, 2)])
    assert ("unassign", sorted([(A, 2), (B, 2)])) in client.calls  # the client unassigns only A's
    assert rebalance.assignment.partitions == {(A, 0), (B, 0)}
    assert restorer.removed == {2}


class Metadata:
    """A cluster whose topics have two partitions each. Falsy, as confluent-kafka's
    AdminClient is when idle (its __len__ is its event queue's length)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __len__(self) -> int:
        return 0

    def list_topics(self, topic: str, timeout: float) -> Any:
        self.asked.append(topic)
        partitions = {0: object(), 1: object()}
        meta = type("T", (), {"error": None, "partitions": partitions})()
        return type("M", (), {"topics": {topic: meta}})()


def test_the_count_check_asks_another_client_than_the_consumer_in_its_callback() -> None:
    # A blocking call on the consumer inside its own rebalance callback ends the
    # client's call state early; the next callback served in the same consume() then
    # aborts the process (confluent-kafka's CallState_get assertion).
    client, restorer, metadata = Client(), FakeRestorer(), Metadata()
    rebalance = Rebalance(
        [A, B],
        cast(Consumer, client),
        [StateStore("s", "s.changelog")],
        cast(Restorer, restorer),
        {A: 2, B: 2},
        incremental=True,
        metadata=cast(Any, metadata),
    )
    given = [TopicPartition(t, 0) for t in (A, B)]
    rebalance.assigned(cast(Consumer, client), given)
    assert sorted(metadata.asked) == sorted([A, B])
    assert [name for name, _ in client.calls] == ["assign"]
