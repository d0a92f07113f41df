"""`read_topics` progress reports on a real topic: records read and offsets to go while it
reads, and a last report when done."""

from __future__ import annotations

import pytest
from confluent_kafka import Message, Producer

from eos.kafka import reader
from eos.kafka.reader import ReadProgress, read_topics
from eos.testing.cluster import KafkaCluster
from eos.testing.helpers import create_topic

RECORDS = 300


@pytest.fixture
def topic(eos_cluster: KafkaCluster, monkeypatch: pytest.MonkeyPatch) -> str:
    name = create_topic(eos_cluster, "progress", 3)
    producer = Producer(eos_cluster.client_config())
    for i in range(RECORDS):
        producer.produce(name, key=str(i).encode(), value=b"v")
    assert producer.flush(30) == 0
    monkeypatch.setattr(reader, "PROGRESS_EVERY", 0.0)  # a report on every fetch
    return name


def _check(reports: list[ReadProgress], read: list[Message]) -> None:
    assert len(read) == RECORDS
    *going, last = reports
    assert going, "no report while reading"
    assert not any(r.done for r in going)
    assert going[0].remaining == RECORDS  # nothing fetched yet: every offset to go
    assert all(0 <= r.remaining <= RECORDS and r.records <= RECORDS for r in going)
    assert [r.records for r in reports] == sorted(r.records for r in reports)
    assert last.done
    assert (last.records, last.remaining, last.fraction) == (RECORDS, 0, 1.0)
    assert last.seconds >= going[-1].seconds


def test_a_read_reports_its_progress_and_its_end(eos_cluster: KafkaCluster, topic: str) -> None:
    reports: list[ReadProgress] = []
    read: list[Message] = []
    read_topics(eos_cluster.client_config(), {topic: read.append}, 30, progress=reports.append)
    _check(reports, read)
