"""Store partitions have one owner whatever the subscriptions; partition counts are fixed.

Two processors run in threads of this process against the real broker: a stateful app
reading two topics, and another version of it reading only one. Every write of theirs
to the shared store names its writer, so the changelog shows who processed what.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Message, Producer
from confluent_kafka.admin import AdminClient, NewPartitions  # type: ignore[attr-defined]

from eos.config import EngineSettings
from eos.engine.api import InputRecord, OutputRecord
from eos.engine.app import App, build_processor
from eos.engine.copartition import PartitionsChanged
from eos.engine.processor import Processor
from eos.engine.state import StateStore
from eos.kafka.reader import read_topics
from eos.testing.cluster import KafkaCluster

PARTITIONS = 4


@dataclass(frozen=True)
class Topics:
    a: str
    b: str
    changelog: str
    dlq: str
    group: str


@pytest.fixture
def topics(eos_topic: Callable[..., str]) -> Topics:
    return Topics(
        eos_topic("copart-a", partitions=PARTITIONS),
        eos_topic("copart-b", partitions=PARTITIONS),
        eos_topic("copart-store", partitions=PARTITIONS),
        eos_topic("copart-dlq", partitions=1),
        f"copart-{uuid.uuid4().hex[:8]}",
    )


def _app(name: str, inputs: list[str], changelog: str) -> App:
    store = StateStore("seen", changelog)

    def remember(record: InputRecord) -> list[OutputRecord]:
        wave = (record.raw_value or b"").decode()
        store.put(record.partition, f"{record.topic}:{wave}", {"by": name})
        return []

    return App(
        name=name,
        transform=remember,
        inputs=dict.fromkeys(inputs),
        outputs={},
        stores=(store,),
        assignment_strategy="cooperative-sticky",
    )


@contextmanager
def _running(
    cluster: KafkaCluster, t: Topics, name: str, inputs: list[str], state: Path, **extra: object
) -> Iterator[tuple[Processor, threading.Thread]]:
    settings = EngineSettings(
        bootstrap_servers=cluster.bootstrap_servers,
        schema_registry_url=cluster.schema_registry_url,
        group_id=t.group,
        dlq_topic=t.dlq,
        instance_id=name,
        transactional_id_prefix=t.group,
        state_dir=state,
        batch_max_ms=50,
        session_timeout_ms=10_000,
        **extra,  # type: ignore[arg-type]
    )
    processor = build_processor(settings, _app(name, inputs, t.changelog))
    failure: list[BaseException] = []

    def run() -> None:
        try:
            processor.run()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        yield processor, thread
    finally:
        processor.request_stop()
        thread.join(60)
    if failure:
        raise failure[0]


def _send(cluster: KafkaCluster, topics: list[str], wave: str) -> None:
    producer = Producer(cluster.client_config())
    for topic in topics:
        for p in range(PARTITIONS):
            producer.produce(topic, key=f"k{p}".encode(), value=wave.encode(), partition=p)
    assert producer.flush(30) == 0


def _writers(cluster: KafkaCluster, changelog: str, wave: str) -> dict[int, set[str]]:
    """Per store partition, who wrote it for `wave`'s records."""
    out: dict[int, set[str]] = {}

    def collect(msg: Message) -> None:
        if (msg.key() or b"").decode().endswith(f":{wave}"):
            out.setdefault(msg.partition() or 0, set()).add(json.loads(msg.value() or b"")["by"])

    read_topics(cluster.client_config(), {changelog: collect}, 60)
    return out


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_members_with_different_subscriptions_never_both_process_a_store_partition(
    eos_cluster: KafkaCluster, topics: Topics, tmp_path: Path
) -> None:
    t = topics
    with _running(eos_cluster, t, "both", [t.a, t.b], tmp_path) as (both, _):
        _send(eos_cluster, [t.a, t.b], "w0")
        _wait(lambda: len(both.rebalance.parts.active) == PARTITIONS, 60, "the first member")
        # Another version of the app, reading only topic a, joins: the group splits a's
        # partitions between the two, and the first member's b partitions follow its a.
        with _running(eos_cluster, t, "only-a", [t.a], tmp_path) as (only_a, _):
            _wait(lambda: bool(only_a.rebalance.parts.active), 60, "the second member")
            _send(eos_cluster, [t.a, t.b], "w1")
            _wait(lambda: both.stats.records + only_a.stats.records >= PARTITIONS + 2, 60, "w1")
            time.sleep(3)  # what either would still process of w1 has time to commit
            held = set(only_a.rebalance.parts.active)

    writers = _writers(eos_cluster, t.changelog, "w1")
    assert held and all(writers.get(p, {"only-a"}) == {"only-a"} for p in held), writers
    assert all(len(names) == 1 for names in writers.values()), writers


def test_a_partition_count_change_stops_the_processor_with_a_clear_message(
    eos_cluster: KafkaCluster, topics: Topics, tmp_path: Path
) -> None:
    t = topics
    fast_metadata = {"topic.metadata.refresh.interval.ms": "1000"}
    with (
        pytest.raises(PartitionsChanged, match=rf"{t.a} from {PARTITIONS} to {PARTITIONS + 2}"),
        _running(eos_cluster, t, "p", [t.a, t.b], tmp_path, client_overrides=fast_metadata) as (
            processor,
            thread,
        ),
    ):
        _send(eos_cluster, [t.a, t.b], "w0")
        _wait(lambda: len(processor.rebalance.parts.active) == PARTITIONS, 60, "the member")
        admin = AdminClient(eos_cluster.client_config())
        admin.create_partitions([NewPartitions(t.a, PARTITIONS + 2)])[t.a].result(30)
        _wait(lambda: not thread.is_alive(), 60, "the processor to stop")


def test_a_member_joining_moves_only_the_partitions_that_change_hands(
    eos_cluster: KafkaCluster, topics: Topics, tmp_path: Path
) -> None:
    """Cooperative rebalancing with followed inputs: the first member keeps processing
    what it keeps (never revoked: still its first assignment), b's p with a's p."""
    t = topics
    with _running(eos_cluster, t, "first", [t.a, t.b], tmp_path) as (first, _):
        _send(eos_cluster, [t.a, t.b], "w0")
        _wait(lambda: len(first.rebalance.parts.active) == PARTITIONS, 60, "the first member")
        with _running(eos_cluster, t, "second", [t.a, t.b], tmp_path) as (second, _):
            _wait(lambda: bool(second.rebalance.parts.active), 60, "the second member")
            _wait(lambda: len(first.rebalance.parts.active) < PARTITIONS, 60, "the handover")
            kept = first.assignment.partitions
            moved = second.assignment.partitions
            assert kept and moved and not kept & moved
            numbers = {p for _t, p in kept}
            assert numbers == set(first.rebalance.parts.active)
            assert kept == {(topic, p) for topic in (t.a, t.b) for p in numbers}
            assert all(first.assignment.generation(tp) == 1 for tp in kept), kept
