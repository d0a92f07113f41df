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


def by_subject(contracts: Mapping[str, AvroContract]) -> dict[str, AvroContract]:
    """Topics' contracts keyed by their subjects (topic-name strategy)."""
    return {subject_for(topic): contract for topic, contract in contracts.items()}


def check(
    registry: SchemaRegistryClient, contracts: Mapping[str, AvroContract]
) -> list[SubjectCheck]:
    """Would registering each topic's contract be accepted under the subject's rules?"""
    return check_subjects(registry, by_subject(contracts))


def check_subjects(
    registry: SchemaRegistryClient, subjects: Mapping[str, AvroContract]
) -> list[SubjectCheck]:
    """Would registering each subject's contract be accepted under its rules?"""
    results = []
    for subject, contract in sorted(subjects.items()):
        if not _registered(registry, subject):
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


def _registered(registry: SchemaRegistryClient, subject: str) -> bool:
    """Asked of the subject itself: a registry lists its subjects a page at a time (an
    Apicurio registry 1,000), so a subject past the first page was taken for new."""
    try:
        return bool(registry.get_versions(subject))
    except SchemaRegistryError as exc:
        if exc.http_status_code == 404:
            return False
        raise


def register(
    registry: SchemaRegistryClient, contracts: Mapping[str, AvroContract], level: str = "BACKWARD"
) -> dict[str, int]:
    """Register every topic's contract under the topic-name strategy."""
    return register_subjects(registry, by_subject(contracts), level)


def register_subjects(
    registry: SchemaRegistryClient, subjects: Mapping[str, AvroContract], level: str = "BACKWARD"
) -> dict[str, int]:
    """Register each subject's contract, with `level` compatibility."""
    ids = {}
    for subject, contract in sorted(subjects.items()):
        ids[subject] = registry.register_schema(subject, Schema(contract.schema_str, "AVRO"))
        registry.set_compatibility(subject, level)
    return ids
