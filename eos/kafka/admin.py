"""Topic administration that survives a cold or settling cluster: metadata and topic
creation asked again while a controller or coordinator is loading or a broker is out of
reach; a topic that a retried request already created counts as created."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ClusterMetadata,
    NewTopic,
)

from eos.kafka.clients import connection_config
from eos.kafka.errors import kafka_error
from eos.kafka.retry import settled

__all__ = ["create_topic", "create_topics", "metadata"]


def metadata(admin: AdminClient, timeout: float = 60.0) -> ClusterMetadata:
    """The cluster's metadata (brokers, topics), asked again while the cluster settles."""
    return settled(lambda: admin.list_topics(timeout=min(timeout, 30.0)), timeout)


def create_topics(
    admin: AdminClient, topics: Iterable[NewTopic], timeout: float = 120.0
) -> list[str]:
    """Create `topics`, each asked again while the cluster settles; returns the names of
    those this call created or found created by its own earlier attempt. A topic that
    exists already is an error only on the first attempt (somebody else's topic)."""
    pending = {t.topic: t for t in topics}
    done: list[str] = []
    retried = False

    def attempt() -> None:
        nonlocal retried
        futures = admin.create_topics(list(pending.values()), operation_timeout=30)
        failures: list[KafkaException] = []
        for name, future in futures.items():
            try:
                future.result(timeout=60)
            except KafkaException as exc:
                code = kafka_error(exc).code()
                if code != KafkaError.TOPIC_ALREADY_EXISTS or not retried:
                    failures.append(exc)
                    continue
            done.append(name)
            del pending[name]
        retried = True
        if failures:
            raise failures[0]

    settled(attempt, timeout)
    return done


def create_topic(
    client_config: Mapping[str, Any],
    prefix: str = "t",
    partitions: int = 1,
    replication: int = 1,
    config: Mapping[str, str] | None = None,
) -> str:
    """Create `<prefix>-<random>` with `config` (the topic's settings) on the cluster that
    `client_config` reaches, wait until the cluster has it, and return its name."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    admin = AdminClient(connection_config(client_config))
    create_topics(admin, [NewTopic(name, partitions, replication, config=dict(config or {}))])
    return name


def delete_topics(
    client_config: Mapping[str, Any], names: Iterable[str], timeout: float = 60.0
) -> list[str]:
    """Delete `names` from the cluster `client_config` reaches; the names it could not
    delete (already gone counts as deleted)."""
    admin = AdminClient(connection_config(client_config))
    futures = admin.delete_topics(list(names), operation_timeout=30)
    failed = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            if kafka_error(exc).code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                failed.append(name)
    return failed
