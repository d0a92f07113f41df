"""The kit's checks catch what they name: a duplicated record, a lost one, an aborted
write nothing committed, a transaction left open. Each also passes on a clean run, so
neither is vacuous."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable

import pytest
from confluent_kafka import Producer

from eos.testing.checks import (
    ExactlyOnceViolation,
    HangingTransaction,
    assert_exactly_once,
    assert_no_hanging_transactions,
)
from eos.testing.cluster import KafkaCluster


def _write(cluster: KafkaCluster, topic: str, keys: Iterable[str]) -> None:
    producer = Producer(cluster.client_config(acks="all"))
    for key in keys:
        producer.produce(topic, key=key, value=b"v", partition=0)
    assert producer.flush(30) == 0


@pytest.fixture
def pipeline(eos_cluster: KafkaCluster, eos_topic: Callable[..., str]) -> tuple[str, str, str]:
    """An input of ten records k0..k9 and empty output and DLQ topics."""
    source, out, dlq = eos_topic("in"), eos_topic("out"), eos_topic("dlq")
    _write(eos_cluster, source, [f"k{i}" for i in range(10)])
    return source, out, dlq


def test_every_input_once_across_the_outputs_and_the_dlq_passes(
    eos_cluster: KafkaCluster, pipeline: tuple[str, str, str]
) -> None:
    source, out, dlq = pipeline
    _write(eos_cluster, out, [f"k{i}" for i in range(9)])
    _write(eos_cluster, dlq, ["k9"])
    assert_exactly_once(eos_cluster, source, [out], dlq_topic=dlq)


def test_a_duplicated_record_fails_naming_both_offsets(
    eos_cluster: KafkaCluster, pipeline: tuple[str, str, str]
) -> None:
    source, out, dlq = pipeline
    _write(eos_cluster, out, [*(f"k{i}" for i in range(10)), "k3"])
    with pytest.raises(ExactlyOnceViolation) as caught:
        assert_exactly_once(eos_cluster, source, [out], dlq_topic=dlq)
    message = str(caught.value)
    assert "1 input(s) written more than once" in message
    assert f"'k3' at {out}[0]@3, {out}[0]@10" in message


def test_a_lost_record_fails_naming_its_input_offset(
    eos_cluster: KafkaCluster, pipeline: tuple[str, str, str]
) -> None:
    source, out, dlq = pipeline
    _write(eos_cluster, out, [f"k{i}" for i in range(10) if i != 5])
    with pytest.raises(ExactlyOnceViolation) as caught:
        assert_exactly_once(eos_cluster, source, [out], dlq_topic=dlq)
    assert f"1 input(s) in no output and not dead-lettered: 'k5' (input {source}[0]@5)" in str(
        caught.value
    )


def test_an_output_without_an_input_and_an_aborted_write_fail(
    eos_cluster: KafkaCluster, pipeline: tuple[str, str, str]
) -> None:
    source, out, dlq = pipeline
    _write(eos_cluster, out, [*(f"k{i}" for i in range(10)), "stray"])
    txn = Producer(eos_cluster.client_config(**{"transactional.id": f"t-{uuid.uuid4().hex}"}))
    txn.init_transactions(30)
    txn.begin_transaction()
    txn.produce(out, key="ghost", value=b"v", partition=0)
    txn.flush(30)
    txn.abort_transaction(30)
    with pytest.raises(ExactlyOnceViolation) as caught:
        assert_exactly_once(eos_cluster, source, [out], dlq_topic=dlq)
    message = str(caught.value)
    assert f"1 output(s) with no input: 'stray' at {out}[0]@10" in message
    assert re.search(rf"read_uncommitted .*'ghost' at {re.escape(out)}\[0\]@11", message)


def test_a_transaction_left_open_is_named(
    eos_cluster: KafkaCluster, eos_topic: Callable[..., str]
) -> None:
    topic = eos_topic("open")
    _write(eos_cluster, topic, ["a"])
    assert_no_hanging_transactions(eos_cluster, [topic])
    txn = Producer(eos_cluster.client_config(**{"transactional.id": f"t-{uuid.uuid4().hex}"}))
    txn.init_transactions(30)
    txn.begin_transaction()
    txn.produce(topic, key="b", value=b"v", partition=0)
    txn.flush(30)
    named = rf"{re.escape(topic)}\[0\] \(last stable offset 1, high watermark 2\)"
    with pytest.raises(HangingTransaction, match=named):
        assert_no_hanging_transactions(eos_cluster, [topic])
    txn.abort_transaction(30)
    assert_no_hanging_transactions(eos_cluster, [topic])
