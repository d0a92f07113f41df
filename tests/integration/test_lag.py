"""`eos lag` against a real broker: its committed offsets, LSO, high watermarks, lag and
ages match what plain clients read independently, an open transaction included."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from eos.cli import main
from eos.testing.cluster import KafkaCluster

PARTITIONS = 3
AGE_S = 120  # how old the records are made, by their timestamps


@pytest.fixture
def open_producer(eos_cluster: KafkaCluster) -> Iterator[Producer]:
    producer = Producer(
        eos_cluster.client_config(**{"transactional.id": f"lag-{uuid.uuid4().hex[:8]}"})
    )
    producer.init_transactions(30)
    yield producer
    producer.abort_transaction(30)


def _write(producer: Producer, topic: str, counts: dict[int, int], commit: bool) -> None:
    stamp = int((time.time() - AGE_S) * 1000)
    producer.begin_transaction()
    for partition, n in counts.items():
        for i in range(n):
            producer.produce(topic, value=b"x%d" % i, partition=partition, timestamp=stamp)
    producer.flush(30)
    if commit:
        producer.commit_transaction(30)


def _independent(cluster: KafkaCluster, group: str, topic: str) -> dict[int, tuple[int, int, int]]:
    """Per partition: committed (the group's), LSO and high watermark, read by clients."""
    out = {}
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    with_group = Consumer(cluster.client_config(**{"group.id": group}))
    committed = {tp.partition: tp.offset for tp in with_group.committed(tps, timeout=30)}
    with_group.close()
    levels = {}
    for level in ("read_committed", "read_uncommitted"):
        c = Consumer(cluster.client_config(**{"group.id": "x", "isolation.level": level}))
        levels[level] = {
            p: c.get_watermark_offsets(TopicPartition(topic, p), 30)[1] for p in range(PARTITIONS)
        }
        c.close()
    for p in range(PARTITIONS):
        out[p] = (committed[p], levels["read_committed"][p], levels["read_uncommitted"][p])
    return out


def test_lag_matches_offsets_read_independently(
    eos_cluster: KafkaCluster,
    eos_topic: Callable[..., str],
    open_producer: Producer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic = eos_topic("lag", PARTITIONS)
    group = f"lag-{uuid.uuid4().hex[:8]}"
    _write(open_producer, topic, {0: 10, 1: 7, 2: 5}, commit=True)
    # The group has processed 4 of partition 0 and all of partition 2, none of 1.
    consumer = Consumer(eos_cluster.client_config(**{"group.id": group}))
    consumer.commit(
        offsets=[TopicPartition(topic, 0, 4), TopicPartition(topic, 2, 6)], asynchronous=False
    )
    consumer.close()
    _write(open_producer, topic, {2: 3}, commit=False)  # left open: HW past the LSO

    servers = eos_cluster.bootstrap_servers
    code = main(
        ["lag", "--bootstrap-servers", servers, "--group-id", group, "--topic", topic, "--json"]
    )
    assert code == 0
    shown = json.loads(capsys.readouterr().out)
    rows = {r["partition"]: r for r in shown["partitions"]}

    truth = _independent(eos_cluster, group, topic)
    assert truth[2][2] > truth[2][1], "the open transaction must put the HW past the LSO"
    for p, (committed, stable, high) in truth.items():
        row = rows[p]
        assert (row["committed"], row["last_stable"], row["high_watermark"]) == (
            committed if committed >= 0 else -1,
            stable,
            high,
        )
        assert row["lag"] == stable - max(committed, 0)
    assert [rows[p]["lag"] for p in range(PARTITIONS)] == [7, 8, 0]
    assert shown["total_lag"] == 15
    for p in (0, 1):  # records waiting: their age, from their timestamps
        assert AGE_S <= rows[p]["oldest_age_s"] < AGE_S + 60
    assert rows[2]["oldest_age_s"] is None  # nothing committed left to process


def test_lag_names_the_missing_topic(
    eos_cluster: KafkaCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = f"no-such-{uuid.uuid4().hex[:8]}"
    code = main(["lag", "--bootstrap-servers", eos_cluster.bootstrap_servers, "--topic", missing])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and missing in err and "--topic" in err
