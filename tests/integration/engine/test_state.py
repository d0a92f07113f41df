"""A state store rebuilt from its changelog sees exactly the committed changes."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Producer

from eos.engine.restore import Restorer, RestoreStalled
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


def _store(topic: str, directory: Path) -> StateStore:
    store = StateStore("balances", topic)
    store.bind(directory, {"cluster": "test"})
    return store


def _restore(
    store: StateStore,
    partitions: list[int],
    cluster: KafkaCluster,
    stall_s: float = 60.0,
) -> Restorer:
    """Restore `partitions` the way the run loop does, a step at a time."""
    restorer = Restorer([store], cluster.client_config(), stall_s)
    restorer.add(partitions)
    ready: set[int] = set()
    try:
        while ready != set(partitions):
            ready |= restorer.step(0.5)
    finally:
        restorer.close()
    return restorer


def _commit(cluster: KafkaCluster, topic: str, changes: dict[tuple[int, str], object]) -> None:
    _transaction(cluster, topic, changes).commit_transaction(30)


def test_restore_applies_committed_changes_of_the_assigned_partitions_only(
    eos_cluster: KafkaCluster, eos_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = eos_topic("changelog", partitions=2)
    _commit(eos_cluster, topic, {(0, "a"): 1, (0, "b"): 2, (1, "c"): 3})
    tx = _transaction(eos_cluster, topic, {(0, "a"): 10, (0, "d"): 4})
    tx.abort_transaction(30)
    _commit(eos_cluster, topic, {(0, "b"): 20})

    store = _store(topic, tmp_path)
    _restore(store, [0], eos_cluster)

    assert {k: store.get(0, k) for k in "abcd"} == {"a": 1, "b": 20, "c": None, "d": None}
    with pytest.raises(KeyError):
        store.get(1, "c")  # partition 1 is not restored here


def test_a_restore_from_a_checkpoint_reads_only_the_tail(
    eos_cluster: KafkaCluster, eos_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = eos_topic("changelog", partitions=1)
    _commit(eos_cluster, topic, {(0, f"k{i}"): i for i in range(500)})
    store = _store(topic, tmp_path)
    assert _restore(store, [0], eos_cluster).restored == 500
    store.close()
    _commit(eos_cluster, topic, {(0, "k1"): "new", (0, "k501"): 501})

    store = _store(topic, tmp_path)  # a restart: the same folder, a new process's store
    restorer = _restore(store, [0], eos_cluster)

    assert restorer.restored == 2  # the tail, not the 502 records of the changelog
    assert (store.get(0, "k1"), store.get(0, "k2"), store.get(0, "k501")) == ("new", 2, 501)


def test_a_store_made_for_another_changelog_is_rebuilt(
    eos_cluster: KafkaCluster, eos_topic: Callable[..., str], tmp_path: Path
) -> None:
    first, second = eos_topic("changelog", partitions=1), eos_topic("changelog", partitions=1)
    _commit(eos_cluster, first, {(0, "a"): 1, (0, "b"): 2})
    _restore(_store(first, tmp_path), [0], eos_cluster).restored  # noqa: B018
    _commit(eos_cluster, second, {(0, "a"): 3})
    store = StateStore("balances", second)  # same name, so the same folder
    store.bind(tmp_path, {"cluster": "test"})
    _restore(store, [0], eos_cluster)
    assert (store.get(0, "a"), store.get(0, "b")) == (3, None)


def test_a_transaction_open_when_the_restore_starts_is_waited_for(
    eos_cluster: KafkaCluster, eos_topic: Callable[..., str], tmp_path: Path
) -> None:
    # A stalled former owner whose transaction (and offsets) may still commit: restoring
    # without it while the offsets then include it would lose its changes.
    topic = eos_topic("changelog", partitions=1)
    _commit(eos_cluster, topic, {(0, "a"): 1})
    tx = _transaction(eos_cluster, topic, {(0, "a"): 2})

    store = _store(topic, tmp_path)
    done = threading.Event()

    def restore() -> None:
        _restore(store, [0], eos_cluster)
        done.set()

    worker = threading.Thread(target=restore, daemon=True)
    worker.start()
    time.sleep(3)
    waited = not done.is_set()
    tx.commit_transaction(30)
    worker.join(60)

    assert waited, "the restore finished while a transaction on its changelog was open"
    assert done.is_set()
    assert store.get(0, "a") == 2


def test_a_restore_blocked_by_an_open_transaction_fails_clearly(
    eos_cluster: KafkaCluster, eos_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = eos_topic("changelog", partitions=1)
    tx = _transaction(eos_cluster, topic, {(0, "a"): 1})
    try:
        with pytest.raises(RestoreStalled, match=rf"no progress for 3s \({topic}\[0\] at"):
            _restore(_store(topic, tmp_path), [0], eos_cluster, stall_s=3)
    finally:
        tx.abort_transaction(30)
