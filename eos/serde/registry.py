"""Schema registry lookups, classified: a missing id is the record's fault (permanent),
an unreachable registry is nobody's (transient, never a reason to dead-letter)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from eos.errors import TransientError
from eos.serde.wire import DecodeError

__all__ = ["RegistryUnavailable", "delete_subjects", "schema_str", "subjects_of"]

T = TypeVar("T")


class RegistryUnavailable(TransientError):
    """The schema registry did not answer; retried, never a reason to dead-letter."""


def schema_str(registry: SchemaRegistryClient, schema_id: int) -> str:
    """The schema text registered under `schema_id`."""
    schema = _about(schema_id, lambda: registry.get_schema(schema_id))
    return schema.schema_str or "null"


def subjects_of(registry: SchemaRegistryClient, schema_id: int) -> list[str]:
    """The subjects that have `schema_id` as one of their versions."""
    return list(_about(schema_id, lambda: registry.get_subjects_by_schema_id(schema_id)))


def delete_subjects(registry: SchemaRegistryClient, subjects: Iterable[str]) -> list[str]:
    """Delete `subjects` for good (a soft delete, then the permanent one, which the
    Confluent API allows only after it); those it could not delete. A subject that is
    not there counts as deleted."""
    left = []
    for subject in subjects:
        try:
            registry.delete_subject(subject)
            registry.delete_subject(subject, permanent=True)
        except SchemaRegistryError as exc:
            if exc.http_status_code != 404:
                left.append(subject)
        except Exception:  # the registry is unreachable: say which remain
            left.append(subject)
    return left


def _about(schema_id: int, ask: Callable[[], T]) -> T:
    """`ask()`, its failure classified: 404 is the id's fault, anything else the registry's."""
    try:
        return ask()
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
