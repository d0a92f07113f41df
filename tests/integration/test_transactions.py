"""The broker's transaction guarantees that everything in eos stands on."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import (
    OFFSET_INVALID,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from eos.testing.cluster import ConfigValue, KafkaCluster
from eos.testing.helpers import committed_offsets, read_committed


def _txn_producer(cluster: KafkaCluster, transactional_id: str | None = None) -> Producer:
    producer = Producer(
        cluster.client_config(**{"transactional.id": transactional_id or f"t-{uuid.uuid4()}"})
    )
    producer.init_transactions(60)
    return producer


def _produce_plain(cluster: KafkaCluster, topic: str, values: list[bytes]) -> None:
    producer = Producer(cluster.client_config(acks="all", **{"enable.idempotence": True}))
    for value in values:
        producer.produce(topic, value=value)
    assert producer.flush(30) == 0, "input records were not delivered"


def _group_consumer(cluster: KafkaCluster, group: str, topic: str) -> Consumer:
    config: dict[str, ConfigValue] = {
        "group.id": group,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    consumer = Consumer(cluster.client_config(**config))
    consumer.subscribe([topic])
    return consumer


def _consume(consumer: Consumer, count: int, timeout: float = 30.0) -> list[Message]:
    """Exactly `count` records (fewer only on timeout, which fails the caller's asserts)."""
    out: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        for msg in consumer.consume(count - len(out), timeout=0.5):
            err = msg.error()
            if err is not None:
                raise KafkaException(err)
            out.append(msg)
    assert len(out) == count, f"consumed {len(out)} of {count} records within {timeout}s"
    return out


def _positions(consumer: Consumer) -> list[TopicPartition]:
    return consumer.position(consumer.assignment())


def test_committed_records_are_visible_and_aborted_ones_are_not(
    eos_cluster: KafkaCluster, eos_topic: Callable[..., str]
) -> None:
    topic = eos_topic("visibility")
    producer = _txn_producer(eos_cluster)

    producer.begin_transaction()
    producer.produce(topic, key=b"k", value=b"committed")
    producer.commit_transaction(30)

    producer.begin_transaction()
    producer.produce(topic, key=b"k", value=b"aborted")
    producer.flush(30)
    producer.abort_transaction(30)

    committed = [m.value() for m in read_committed(eos_cluster, topic)]
    uncommitted = [
        m.value() for m in read_committed(eos_cluster, topic, isolation="read_uncommitted")
    ]
    assert committed == [b"committed"]
    assert uncommitted == [b"committed", b"aborted"]


def test_send_offsets_commits_the_groups_offsets_with_the_outputs(
    eos_cluster: KafkaCluster, eos_topic: Callable[..., str]
) -> None:
    source, sink = eos_topic("offsets-in"), eos_topic("offsets-out")
    group = f"g-{uuid.uuid4().hex[:10]}"
    inputs = [f"in-{i}".encode() for i in range(5)]
    _produce_plain(eos_cluster, source, inputs)
    consumer = _group_consumer(eos_cluster, group, source)
    producer = _txn_producer(eos_cluster)
    try:
        consumed = _consume(consumer, len(inputs))
        positions = _positions(consumer)
        assert [(tp.partition, tp.offset) for tp in positions] == [(0, len(inputs))]
        assert committed_offsets(eos_cluster, group, source) == {0: OFFSET_INVALID}

        producer.begin_transaction()
        for msg in consumed:
            producer.produce(sink, value=(msg.value() or b"").replace(b"in-", b"out-"))
        producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 30)
        producer.commit_transaction(30)

        assert committed_offsets(eos_cluster, group, source) == {0: len(inputs)}
        outputs = [m.value() for m in read_committed(eos_cluster, sink)]
        assert outputs == [f"out-{i}".encode() for i in range(len(inputs))]
    finally:
        consumer.close()


def test_aborted_transaction_leaves_the_groups_offsets_where_they_were(
    eos_cluster: KafkaCluster, eos_topic: Callable[..., str]
) -> None:
    source, sink = eos_topic("abort-in"), eos_topic("abort-out")
    group = f"g-{uuid.uuid4().hex[:10]}"
    _produce_plain(eos_cluster, source, [f"in-{i}".encode() for i in range(6)])
    consumer = _group_consumer(eos_cluster, group, source)
    producer = _txn_producer(eos_cluster)

    def transaction(outputs: list[bytes], commit: bool) -> None:
        producer.begin_transaction()
        for value in outputs:
            producer.produce(sink, value=value)
        producer.send_offsets_to_transaction(
            _positions(consumer), consumer.consumer_group_metadata(), 30
        )
        if commit:
            producer.commit_transaction(30)
        else:
            producer.flush(30)  # the outputs reach the log before the abort
            producer.abort_transaction(30)

    try:
        _consume(consumer, 2)
        # Aborted with nothing committed before: the group still has no offset.
        transaction([b"aborted-first"], commit=False)
        assert committed_offsets(eos_cluster, group, source) == {0: OFFSET_INVALID}
        # The retry of the same two records commits offset 2.
        transaction([b"out-0", b"out-1"], commit=True)
        assert committed_offsets(eos_cluster, group, source) == {0: 2}

        _consume(consumer, 4)
        assert [tp.offset for tp in _positions(consumer)] == [6]
        # Aborted over a committed offset: it stays at 2, not the sent 6.
        transaction([b"aborted-second"], commit=False)
        assert committed_offsets(eos_cluster, group, source) == {0: 2}

        committed = [m.value() for m in read_committed(eos_cluster, sink)]
        uncommitted = [
            m.value() for m in read_committed(eos_cluster, sink, isolation="read_uncommitted")
        ]
        assert committed == [b"out-0", b"out-1"]
        assert uncommitted == [b"aborted-first", b"out-0", b"out-1", b"aborted-second"]
    finally:
        consumer.close()


def test_a_new_producer_with_the_same_transactional_id_fences_the_old_one(
    eos_cluster: KafkaCluster, eos_topic: Callable[..., str]
) -> None:
    topic = eos_topic("fencing")
    transactional_id = f"fence-{uuid.uuid4()}"
    old = _txn_producer(eos_cluster, transactional_id)
    old.begin_transaction()
    old.produce(topic, value=b"old-open")
    assert old.flush(30) == 0

    new = _txn_producer(eos_cluster, transactional_id)  # bumps the epoch, aborts old's txn

    reports: list[KafkaError | None] = []
    old.produce(topic, value=b"old-after", on_delivery=lambda err, _msg: reports.append(err))
    with pytest.raises(KafkaException) as raised:
        old.commit_transaction(30)
    error = raised.value.args[0]
    assert error.code() == KafkaError._FENCED
    assert error.fatal()
    assert not error.retriable()
    assert not error.txn_requires_abort()
    # The broker refused the record itself: its epoch is older than the new producer's.
    old.poll(5)
    assert [err.code() if err else None for err in reports] == [KafkaError.INVALID_PRODUCER_EPOCH]
    # Fenced is final: the old producer cannot produce or end or start a transaction.
    with pytest.raises(KafkaException) as raised:
        old.produce(topic, value=b"old-later")
    assert raised.value.args[0].code() == KafkaError._FATAL
    # librdkafka keeps the failed commit_transaction as the call in progress: any other
    # transactional call is refused with a non-fatal _CONFLICT until commit is called again.
    with pytest.raises(KafkaException) as raised:
        old.abort_transaction(5)
    assert raised.value.args[0].code() == KafkaError._CONFLICT
    assert not raised.value.args[0].fatal()
    with pytest.raises(KafkaException) as raised:
        old.commit_transaction(5)
    assert raised.value.args[0].code() == KafkaError._FENCED
    assert raised.value.args[0].fatal()
    with pytest.raises(KafkaException) as raised:
        old.begin_transaction()
    assert raised.value.args[0].code() == KafkaError._FENCED
    assert raised.value.args[0].fatal()

    new.begin_transaction()
    new.produce(topic, value=b"new-1")
    new.produce(topic, value=b"new-2")
    new.commit_transaction(30)

    committed = [m.value() for m in read_committed(eos_cluster, topic)]
    uncommitted = [
        m.value() for m in read_committed(eos_cluster, topic, isolation="read_uncommitted")
    ]
    assert committed == [b"new-1", b"new-2"]
    # The old producer's open transaction reached the log and was aborted; nothing later did.
    assert uncommitted == [b"old-open", b"new-1", b"new-2"]
