"""Small helpers for exactly-once tests against a real cluster."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from eos.kafka import admin
from eos.kafka.offsets import Offsets
from eos.kafka.reader import read_topics
from eos.testing.cluster import KafkaCluster

# Topics created here, per cluster (bootstrap servers), deleted when the session ends.
_CREATED: dict[str, list[str]] = {}


def create_topic(
    cluster: KafkaCluster,
    prefix: str = "t",
    partitions: int = 1,
    replication: int = 1,
    config: Mapping[str, str] | None = None,
) -> str:
    """Create a topic with a unique name and wait until the cluster has it; it is
    deleted at the end of the test session (`delete_created`)."""
    name = admin.create_topic(cluster.client_config(), prefix, partitions, replication, config)
    _CREATED.setdefault(cluster.bootstrap_servers, []).append(name)
    return name


def delete_created(cluster: KafkaCluster) -> list[str]:
    """Delete every topic `create_topic` made on `cluster`; the names deleted."""
    names = _CREATED.pop(cluster.bootstrap_servers, [])
    if names:
        admin.delete_topics(cluster.client_config(), names)
    return names


def produce_avro(
    cluster: KafkaCluster,
    topic: str,
    schema_str: str,
    records: Iterable[tuple[str | None, Mapping[str, Any]]],
) -> int:
    """Produce (key, value) records serialized with the registry; returns the count."""
    registry = SchemaRegistryClient(cluster.registry_config())
    # Topic-name strategy, stated: the default also asks the registry for topic
    # associations, which Confluent-compatible registries may not answer.
    serializer = AvroSerializer(
        registry, schema_str, conf={"subject.name.strategy": topic_subject_name_strategy}
    )
    producer = Producer(cluster.client_config(acks="all", **{"enable.idempotence": True}))
    count = 0
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(err)

    for key, value in records:
        ctx = SerializationContext(topic, MessageField.VALUE)
        producer.produce(topic, key=key, value=serializer(value, ctx), on_delivery=on_delivery)
        producer.poll(0)
        count += 1
    remaining = producer.flush(60)
    if remaining or errors:
        raise RuntimeError(f"{remaining} records undelivered; errors: {errors[:3]}")
    return count


def read_committed(
    cluster: KafkaCluster, topic: str, timeout: float = 30.0, isolation: str = "read_committed"
) -> list[Message]:
    """Every record of `topic` visible under `isolation`, from the start up to the high
    watermark when the call starts, in offset order per partition.

    A transaction still open at that point is waited for (read_committed holds back what
    follows it); TimeoutError when it does not end within `timeout`.
    """
    out: list[Message] = []
    missing = read_topics(cluster.client_config(), {topic: out.append}, timeout, isolation)
    if missing:
        raise RuntimeError(f"topic {topic} does not exist")
    return out


def committed_offsets(
    cluster: KafkaCluster, group: str, topic: str, partitions: int = 1
) -> dict[int, int]:
    """The group's committed offset per partition (-1001 when none)."""
    tps = [(topic, p) for p in range(partitions)]
    with Offsets(cluster.client_config()) as offsets:
        committed = offsets.committed(group, tps)
    return {p: committed.get((topic, p), -1001) for _topic, p in tps}
