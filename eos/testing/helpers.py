"""Small helpers for exactly-once tests against a real cluster."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from eos.testing.cluster import KafkaCluster


def create_topic(
    cluster: KafkaCluster,
    prefix: str = "t",
    partitions: int = 1,
    replication: int = 1,
    config: Mapping[str, str] | None = None,
) -> str:
    """Create a topic with a unique name and wait until the cluster has it."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    admin = AdminClient(cluster.client_config())
    futures = admin.create_topics(
        [NewTopic(name, partitions, replication, config=dict(config or {}))],
        operation_timeout=30,
    )
    futures[name].result(timeout=60)
    return name


def produce_avro(
    cluster: KafkaCluster,
    topic: str,
    schema_str: str,
    records: Iterable[tuple[str | None, Mapping[str, Any]]],
) -> int:
    """Produce (key, value) records serialized with the registry; returns the count."""
    registry = SchemaRegistryClient({"url": cluster.schema_registry_url})
    serializer = AvroSerializer(registry, schema_str)
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
    """Every record of `topic` visible under `isolation`, from the start to the end.

    The end is the last stable offset for read_committed, so an open transaction
    blocks until it ends or `timeout` passes (then TimeoutError).
    """
    config = cluster.client_config()
    config.update(
        {
            "group.id": f"eos-reader-{uuid.uuid4().hex[:8]}",
            "isolation.level": isolation,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        }
    )
    consumer = Consumer(config)
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        parts = [TopicPartition(topic, p, 0) for p in meta.partitions]
        consumer.assign(parts)
        pending = {p.partition for p in parts}
        out: list[Message] = []
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"partitions {sorted(pending)} of {topic} did not reach their end "
                    f"({isolation}) within {timeout}s; is a transaction left open?"
                )
            for msg in consumer.consume(500, timeout=0.5):
                err = msg.error()
                if err is None:
                    out.append(msg)
                elif err.code() == KafkaError._PARTITION_EOF:
                    pending.discard(msg.partition())
                else:
                    raise RuntimeError(f"reading {topic}: {err}")
        return out
    finally:
        consumer.close()


def committed_offsets(
    cluster: KafkaCluster, group: str, topic: str, partitions: int = 1
) -> dict[int, int]:
    """The group's committed offset per partition (-1001 when none)."""
    consumer = Consumer(cluster.client_config(**{"group.id": group}))
    try:
        tps = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        consumer.close()
