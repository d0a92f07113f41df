"""Compare local Avro contracts with the registry: `eos schemas check` and registration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from eos.serde.avro import AvroContract, subject_for


@dataclass(frozen=True)
class SubjectCheck:
    subject: str
    status: str  # "compatible", "new", "INCOMPATIBLE"
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "INCOMPATIBLE"


def check(
    registry: SchemaRegistryClient, contracts: Mapping[str, AvroContract]
) -> list[SubjectCheck]:
    """Would registering each topic's contract be accepted under the subject's rules?"""
    results = []
    existing = set(registry.get_subjects())
    for topic, contract in sorted(contracts.items()):
        subject = subject_for(topic)
        if subject not in existing:
            results.append(SubjectCheck(subject, "new", "not registered yet"))
            continue
        schema = Schema(contract.schema_str, "AVRO")
        try:
            ok = registry.test_compatibility(subject, schema)
        except SchemaRegistryError as exc:
            results.append(SubjectCheck(subject, "INCOMPATIBLE", exc.error_message))
            continue
        level = registry.get_compatibility(subject) if ok is False else ""
        results.append(
            SubjectCheck(
                subject,
                "compatible" if ok else "INCOMPATIBLE",
                "" if ok else f"refused under {level} compatibility",
            )
        )
    return results


def register(
    registry: SchemaRegistryClient, contracts: Mapping[str, AvroContract], level: str = "BACKWARD"
) -> dict[str, int]:
    """Register every contract under the topic-name strategy, with `level` compatibility."""
    ids = {}
    for topic, contract in sorted(contracts.items()):
        subject = subject_for(topic)
        ids[subject] = registry.register_schema(subject, Schema(contract.schema_str, "AVRO"))
        registry.set_compatibility(subject, level)
    return ids
