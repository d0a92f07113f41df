"""TransactionalCommitter against librdkafka's in-process MOCK cluster (no real broker).

The mock cluster runs the transactional protocol well enough for the committer's own
control flow: commits become visible, an abort ends the transaction so the next batch
can commit, and a failing produce surfaces as a TransactionError of the right class.
The mock does not hide aborted records from read_committed readers (its fetch responses
list no aborted transactions), so what a real broker does with aborts is claimed only
by the integration tests.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from eos.engine.records import Encoded
from eos.engine.transaction import TransactionalCommitter
from eos.kafka.errors import ErrorClass, TransactionError, is_record_error


@pytest.fixture(scope="module")
def mock_bootstrap() -> Iterator[str]:
    """A one-broker mock cluster; topics auto-create on their first produce."""
    owner = Producer({"test.mock.num.brokers": 1, "log_level": 3})
    brokers = owner.list_topics(timeout=10).brokers.values()
    bootstrap = ",".join(f"{b.host}:{b.port}" for b in brokers)
    yield bootstrap
    owner.flush(5)


def _topics(bootstrap: str) -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    inp, out = f"in-{tag}", f"out-{tag}"
    seed = Producer({"bootstrap.servers": bootstrap})
    seed.produce(inp, b"seed", partition=0)  # offsets can only be sent for known partitions
    seed.produce(out, b"seed", partition=0)
    assert seed.flush(10) == 0
    return inp, out


def _committer(bootstrap: str) -> tuple[TransactionalCommitter, Consumer, Producer]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex[:6]}"})
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": f"tx-{uuid.uuid4().hex[:6]}",
            "transaction.timeout.ms": 10_000,
            "log_level": 2,
        }
    )
    committer = TransactionalCommitter(lambda: producer, consumer, 10.0)
    committer.init()
    return committer, consumer, producer


def _read(bootstrap: str, topic: str, isolation: str = "read_committed") -> list[Message]:
    reader = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"r-{uuid.uuid4().hex[:6]}",
            "isolation.level": isolation,
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    try:
        parts = reader.list_topics(topic, timeout=10).topics[topic].partitions
        reader.assign([TopicPartition(topic, p, 0) for p in parts])
        pending, out = set(parts), []
        deadline = time.monotonic() + 10
        while pending and time.monotonic() < deadline:
            msg = reader.poll(0.1)
            if msg is None:
                continue
            err = msg.error()
            if err is None:
                out.append(msg)
            elif err.code() == KafkaError._PARTITION_EOF:
                pending.discard(msg.partition())
        assert not pending, f"{topic}: partitions {pending} never reached their end"
        return [m for m in out if m.value() != b"seed"]
    finally:
        reader.close()


def _values(messages: list[Message]) -> list[Any]:
    return [(m.key(), m.value(), m.headers()) for m in messages]


def test_commit_makes_the_outputs_visible_to_read_committed(mock_bootstrap: str) -> None:
    inp, out = _topics(mock_bootstrap)
    committer, consumer, _producer = _committer(mock_bootstrap)
    try:
        committer.commit(
            [TopicPartition(inp, 0, 1)],
            [Encoded(out, b"k1", b"v1", [("h", b"1")]), Encoded(out, b"k2", b"v2", [])],
        )
        committer.commit([TopicPartition(inp, 0, 1)], [Encoded(out, b"k3", b"v3", [])])
    finally:
        committer.close()
        consumer.close()
    got = sorted(_values(_read(mock_bootstrap, out)))
    assert got == [(b"k1", b"v1", [("h", b"1")]), (b"k2", b"v2", None), (b"k3", b"v3", None)]


def test_abort_after_a_failed_commit_lets_the_next_batch_commit(mock_bootstrap: str) -> None:
    inp, out = _topics(mock_bootstrap)
    committer, consumer, producer = _committer(mock_bootstrap)
    too_large = b"x" * 2_000_000  # above message.max.bytes: produce() refuses it
    try:
        with pytest.raises(TransactionError) as info:
            committer.commit(
                [TopicPartition(inp, 0, 1)],
                [
                    Encoded(out, b"before", b"in the failed transaction", []),
                    Encoded(out, b"big", too_large, []),
                ],
            )
        assert info.value.error.code() == KafkaError.MSG_SIZE_TOO_LARGE
        assert producer.flush(10) == 0  # "before" is written, inside the open transaction
        committer.abort()
        committer.commit([TopicPartition(inp, 0, 1)], [Encoded(out, b"after", b"committed", [])])
    finally:
        committer.close()
        consumer.close()
    written = _read(mock_bootstrap, out, "read_uncommitted")
    assert sorted(m.key() or b"" for m in written) == [b"after", b"before"]


def test_without_abort_the_next_commit_cannot_begin(mock_bootstrap: str) -> None:
    """Guards the test above: the abort is what ends the failed transaction."""
    inp, out = _topics(mock_bootstrap)
    committer, consumer, _producer = _committer(mock_bootstrap)
    try:
        with pytest.raises(TransactionError):
            committer.commit(
                [TopicPartition(inp, 0, 1)], [Encoded(out, b"big", b"x" * 2_000_000, [])]
            )
        with pytest.raises(TransactionError) as info:
            committer.commit([TopicPartition(inp, 0, 1)], [Encoded(out, b"k", b"v", [])])
        assert info.value.step == "begin_transaction"
        assert info.value.error.code() == KafkaError._STATE
    finally:
        committer.abort()
        committer.close()
        consumer.close()


def test_a_produce_error_is_abortable_not_fatal(mock_bootstrap: str) -> None:
    """A record the producer refuses must abort the transaction (the batch is redone and,
    if it keeps failing, split until the record is dead-lettered), not stop the engine."""
    inp, out = _topics(mock_bootstrap)
    committer, consumer, _producer = _committer(mock_bootstrap)
    try:
        with pytest.raises(TransactionError) as info:
            committer.commit(
                [TopicPartition(inp, 0, 1)], [Encoded(out, b"big", b"x" * 2_000_000, [])]
            )
        assert info.value.step == f"produce to {out}"
        assert info.value.error_class is ErrorClass.ABORTABLE
        assert is_record_error(info.value.error)  # so a batch that keeps failing is bisected
    finally:
        committer.abort()
        committer.close()
        consumer.close()
