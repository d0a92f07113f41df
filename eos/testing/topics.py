"""A set of topics for one test: unique names, contracts registered, deleted afterwards."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from eos.serde.avro import AvroContract, subject_for
from eos.testing.cluster import KafkaCluster
from eos.testing.helpers import create_topic

__all__ = ["TopicSet", "make_topics"]


@dataclass(frozen=True)
class TopicSet:
    """Logical name -> the topic made for it (`orders` -> `orders-1f3a9c`)."""

    names: Mapping[str, str]

    def name(self, logical: str) -> str:
        return self.names[logical]

    def __getitem__(self, logical: str) -> str:
        return self.names[logical]


def make_topics(
    cluster: KafkaCluster,
    contracts: Mapping[str, AvroContract | None],
    partitions: int = 1,
    replication: int = 1,
    config: Mapping[str, str] | None = None,
) -> TopicSet:
    """Create one topic per logical name (None: no contract, raw bytes) and register
    each contract under its topic's subject (`<topic>-value`)."""
    registry = SchemaRegistryClient(cluster.registry_config())
    names = {}
    for logical, contract in contracts.items():
        prefix = re.sub(r"[^A-Za-z0-9._-]", "-", logical)
        topic = create_topic(cluster, prefix, partitions, replication, config)
        if contract is not None:
            registry.register_schema(subject_for(topic), Schema(contract.schema_str, "AVRO"))
        names[logical] = topic
    return TopicSet(names)
