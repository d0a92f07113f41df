"""A state store rebuilt from its changelog sees exactly the committed changes."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Producer

from eos.engine.state import StateStore
from eos.testing.cluster import KafkaCluster


def _transaction(
    cluster: KafkaCluster, topic: str, changes: dict[tuple[int, str], object]
) -> Producer:
    """A transaction writing `changes` ((partition, key) -> value) to `topic`, left open."""
    tx = Producer(cluster.client_config(**{"transactional.id": f"state-{uuid.uuid4().hex}"}))
    tx.init_transactions(30)
    tx.begin_transaction()
    for (partition, key), value in changes.items():
        tx.produce(topic, key=key.encode(), value=json.dumps(value).encode(), partition=partition)
    assert tx.flush(30) == 0
    return tx


def _store(topic: str, cluster: KafkaCluster) -> StateStore:
    store = StateStore("balances", topic)
    store.bind(cluster.client_config())
    return store


def test_restore_applies_committed_changes_of_the_assigned_partitions_only(
    eos_cluster: KafkaCluster, eos_topic: Callable[..., str]
) -> None:
    topic = eos_topic("changelog", partitions=2)
    tx = _transaction(eos_cluster, topic, {(0, "a"): 1, (0, "b"): 2, (1, "c"): 3})
    tx.commit_transaction(30)
    tx = _transaction(eos_cluster, topic, {(0, "a"): 10, (0, "d"): 4})
    tx.abort_transaction(30)
    tx = _transaction(eos_cluster, topic, {(0, "b"): 20})
    tx.commit_transaction(30)

    store = _store(topic, eos_cluster)
    store.assigned([0], timeout=30)

    assert dict(store.committed_items(0)) == {"a": 1, "b": 20}
    assert store.get(1, "c") is None  # partition 1 is not assigned here


def test_a_transaction_open_when_the_restore_starts_is_waited_for(
    eos_cluster: KafkaCluster, eos_topic: Callable[..., str]
) -> None:
    # A stalled former owner whose transaction (and offsets) may still commit: restoring
    # without it while the offsets then include it would lose its changes.
    topic = eos_topic("changelog", partitions=1)
    tx = _transaction(eos_cluster, topic, {(0, "a"): 1})
    tx.commit_transaction(30)
    tx = _transaction(eos_cluster, topic, {(0, "a"): 2})

    store = _store(topic, eos_cluster)
    done = threading.Event()

    def restore() -> None:
        store.assigned([0], timeout=60)
        done.set()

    worker = threading.Thread(target=restore, daemon=True)
    worker.start()
    time.sleep(3)
    waited = not done.is_set()
    tx.commit_transaction(30)
    worker.join(60)

    assert waited, "the restore finished while a transaction on its changelog was open"
    assert done.is_set()
    assert dict(store.committed_items(0)) == {"a": 2}


def test_a_restore_blocked_by_an_open_transaction_fails_clearly(
    eos_cluster: KafkaCluster, eos_topic: Callable[..., str]
) -> None:
    topic = eos_topic("changelog", partitions=1)
    tx = _transaction(eos_cluster, topic, {(0, "a"): 1})
    try:
        with pytest.raises(RuntimeError, match=rf"restoring store balances from {topic}.*open"):
            _store(topic, eos_cluster).assigned([0], timeout=3)
    finally:
        tx.abort_transaction(30)


def test_a_missing_changelog_topic_is_named(eos_cluster: KafkaCluster) -> None:
    topic = f"no-such-changelog-{uuid.uuid4().hex[:8]}"
    with pytest.raises(RuntimeError, match=f"changelog topic {topic} does not exist"):
        _store(topic, eos_cluster).assigned([0], timeout=10)
