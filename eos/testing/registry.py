"""An in-memory schema registry for tests that run without a broker or a registry."""

from __future__ import annotations

from collections.abc import Mapping

from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry._sync.mock_schema_registry_client import (
    MockSchemaRegistryClient,
)
from confluent_kafka.schema_registry.error import SchemaRegistryError

from eos.serde.avro import AvroContract

__all__ = ["MemoryRegistry"]


class MemoryRegistry(MockSchemaRegistryClient):
    """confluent-kafka's mock registry, plus the one lookup it lacks that the engine's
    decoder makes: the subjects a schema id is a version of (a value written under
    another topic's subject is dead-lettered as WRONG_SUBJECT, here as on a real one)."""

    def __init__(self, contracts: Mapping[str, AvroContract] | None = None) -> None:
        super().__init__({"url": "mock://eos-memory-registry"})
        for subject, contract in (contracts or {}).items():
            self.register(subject, contract)

    def register(self, subject: str, contract: AvroContract) -> int:
        """Register `contract` under `subject`; its schema id."""
        return self.register_schema(subject, Schema(contract.schema_str, "AVRO"))

    def get_subjects_by_schema_id(
        self,
        schema_id: int,
        subject_name: str | None = None,
        deleted: bool = False,
        offset: int = 0,
        limit: int = -1,
    ) -> list[str]:
        found = [
            subject
            for subject in self.get_subjects()
            for version in self.get_versions(subject)
            if self.get_version(subject, version).schema_id == schema_id
        ]
        if not found:
            raise SchemaRegistryError(404, 40403, f"schema id {schema_id} not found")
        return found
