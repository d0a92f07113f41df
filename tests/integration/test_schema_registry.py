"""What eos relies on from the schema registry: the wire format and compatibility checks."""

from __future__ import annotations

import json
import struct
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import (
    Schema,
    SchemaRegistryClient,
    topic_subject_name_strategy,
)
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from eos.testing.cluster import KafkaCluster
from eos.testing.helpers import read_committed


def _order_schema(*extra_fields: dict[str, Any]) -> str:
    return json.dumps(
        {
            "type": "record",
            "name": "Order",
            "namespace": "eos.test",
            "fields": [
                {"name": "id", "type": "string"},
                {"name": "quantity", "type": "int"},
                {"name": "price", "type": "double"},
                {"name": "express", "type": "boolean"},
                {"name": "tags", "type": {"type": "array", "items": "string"}},
                {"name": "note", "type": ["null", "string"], "default": None},
                *extra_fields,
            ],
        }
    )


def test_avro_records_use_the_wire_format_and_round_trip_through_the_broker(
    eos_cluster: KafkaCluster, eos_topic: Callable[..., str], eos_registry: SchemaRegistryClient
) -> None:
    topic = eos_topic("avro")
    subject = f"{topic}-value"  # the serializer's default TopicNameStrategy
    ctx = SerializationContext(topic, MessageField.VALUE)
    records = [
        {
            "id": "o-1",
            "quantity": 3,
            "price": 9.5,
            "express": True,
            "tags": ["a", "b"],
            "note": None,
        },
        {"id": "o-2", "quantity": -7, "price": 0.25, "express": False, "tags": [], "note": "x"},
    ]
    # Topic-name strategy, stated: the default one first asks the registry for topic
    # associations, an unknown route whose empty 404 Apicurio now and then never sends.
    serializer = AvroSerializer(
        eos_registry, _order_schema(), conf={"subject.name.strategy": topic_subject_name_strategy}
    )
    payloads = [serializer(record, ctx) for record in records]

    # A fresh client, so the ids come from the registry and not the serializer's cache.
    lookup = SchemaRegistryClient({"url": eos_cluster.schema_registry_url, "timeout": 10})
    latest = lookup.get_latest_version(subject)
    assert latest.version == 1
    for payload in payloads:
        magic, schema_id = struct.unpack(">bI", payload[:5])
        assert magic == 0
        assert schema_id == latest.schema_id

    producer = Producer(eos_cluster.client_config(acks="all", **{"enable.idempotence": True}))
    for payload in payloads:
        producer.produce(topic, value=payload)
    assert producer.flush(30) == 0

    stored = [m.value() for m in read_committed(eos_cluster, topic)]
    assert stored == payloads
    deserializer = AvroDeserializer(
        SchemaRegistryClient({"url": eos_cluster.schema_registry_url, "timeout": 10}),
        conf={"subject.name.strategy": topic_subject_name_strategy},
    )
    assert [deserializer(value, ctx) for value in stored] == records


def test_backward_compatibility_refuses_a_new_required_field_and_accepts_an_optional_one(
    eos_cluster: KafkaCluster, eos_registry: SchemaRegistryClient
) -> None:
    subject = f"eos-compat-{uuid.uuid4().hex}"
    eos_registry.register_schema(subject, Schema(_order_schema(), "AVRO"))
    eos_registry.set_compatibility(subject, "BACKWARD")
    assert eos_registry.get_compatibility(subject) == "BACKWARD"

    required = _order_schema({"name": "customer", "type": "string"})
    with pytest.raises(SchemaRegistryError) as refused:
        eos_registry.register_schema(subject, Schema(required, "AVRO"))
    assert refused.value.http_status_code == 409
    assert refused.value.error_code == 409
    message = refused.value.error_message.lower()
    assert "incompatible" in message
    assert "customer" in message
    assert eos_registry.get_versions(subject) == [1]

    optional = _order_schema({"name": "customer", "type": ["null", "string"], "default": None})
    eos_registry.register_schema(subject, Schema(optional, "AVRO"))
    assert eos_registry.get_versions(subject) == [1, 2]
    lookup = SchemaRegistryClient(
        {"url": eos_cluster.schema_registry_url, "timeout": 10}
    )  # no cache
    latest = lookup.get_latest_version(subject)
    assert latest.version == 2
    assert json.loads(latest.schema.schema_str or "null") == json.loads(optional)


def test_without_a_compatibility_rule_the_same_change_is_accepted(
    eos_registry: SchemaRegistryClient,
) -> None:
    """The control for the test above: the refusal comes from BACKWARD, not the schema."""
    subject = f"eos-compat-none-{uuid.uuid4().hex}"
    eos_registry.register_schema(subject, Schema(_order_schema(), "AVRO"))
    eos_registry.set_compatibility(subject, "NONE")

    eos_registry.register_schema(
        subject, Schema(_order_schema({"name": "customer", "type": "string"}), "AVRO")
    )
    assert eos_registry.get_versions(subject) == [1, 2]
