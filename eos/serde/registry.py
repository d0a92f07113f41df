"""Schema registry lookups, classified: a missing id is the record's fault (permanent),
an unreachable registry is nobody's (transient, never a reason to dead-letter)."""

from __future__ import annotations

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from eos.errors import TransientError
from eos.serde.wire import DecodeError

__all__ = ["RegistryUnavailable", "schema_str", "subjects_of"]


class RegistryUnavailable(TransientError):
    """The schema registry did not answer; retried, never a reason to dead-letter."""


def schema_str(registry: SchemaRegistryClient, schema_id: int) -> str:
    """The schema text registered under `schema_id`."""
    try:
        schema = registry.get_schema(schema_id)
    except SchemaRegistryError as exc:
        if exc.http_status_code == 404:
            raise DecodeError(
                "UNKNOWN_SCHEMA", f"schema id {schema_id} is not in the registry"
            ) from exc
        raise RegistryUnavailable(f"schema registry error for id {schema_id}: {exc}") from exc
    except Exception as exc:  # connection refused, timeouts: the registry is down
        raise RegistryUnavailable(
            f"schema registry unreachable looking up id {schema_id}: {exc}"
        ) from exc
    return schema.schema_str or "null"


def subjects_of(registry: SchemaRegistryClient, schema_id: int) -> list[str]:
    """The subjects that have `schema_id` as one of their versions."""
    try:
        return list(registry.get_subjects_by_schema_id(schema_id))
    except SchemaRegistryError as exc:
        if exc.http_status_code == 404:
            raise DecodeError(
                "UNKNOWN_SCHEMA", f"schema id {schema_id} is not in the registry"
            ) from exc
        raise RegistryUnavailable(f"schema registry error for id {schema_id}: {exc}") from exc
    except Exception as exc:  # connection refused, timeouts: the registry is down
        raise RegistryUnavailable(
            f"schema registry unreachable looking up id {schema_id}: {exc}"
        ) from exc
