"""The broker's transaction guarantees that everything in eos stands on."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from confluent_kafka import Producer

from eos.testing.cluster import KafkaCluster
from eos.testing.helpers import read_committed


def _txn_producer(cluster: KafkaCluster) -> Producer:
    producer = Producer(cluster.client_config(**{"transactional.id": f"t-{uuid.uuid4()}"}))
    producer.init_transactions(60)
    return producer


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
    uncommitted = [m.value() for m in read_committed(eos_cluster, topic,
                                                     isolation="read_uncommitted")]
    assert committed == [b"committed"]
    assert uncommitted == [b"committed", b"aborted"]
