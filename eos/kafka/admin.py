"""Topic administration that survives a cold or settling cluster: metadata and topic
creation asked again while a controller or coordinator is loading or a broker is out of
reach; a topic that a retried request already created counts as created."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ClusterMetadata,
    NewTopic,
    TopicMetadata,
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
    those this call created or found created by its own earlier attempt, once every
    partition of each has a leader in the metadata a broker serves. A topic that exists
    already is an error only on the first attempt (somebody else's topic)."""
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

    started = time.monotonic()
    settled(attempt, timeout)
    _await_leaders(admin, done, max(timeout - (time.monotonic() - started), 10.0))
    return done


def _await_leaders(admin: AdminClient, names: list[str], timeout: float) -> None:
    """Until a broker serves `names` with a leader for every partition: CreateTopics
    answers once the controller has a topic, and a broker's metadata can lag behind it
    (a client starting at once would find the topic missing)."""
    deadline = time.monotonic() + timeout
    while True:
        topics = metadata(admin, timeout).topics
        waiting = [n for n in names if not _led(topics.get(n))]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise KafkaException(
                KafkaError(
                    KafkaError.LEADER_NOT_AVAILABLE,
                    f"topic(s) {', '.join(waiting)} created, but no broker serves every "
                    f"partition with a leader after {timeout:.0f}s",
                )
            )
        time.sleep(0.1)


def _led(topic: TopicMetadata | None) -> bool:
    return (
        topic is not None
        and topic.error is None
        and bool(topic.partitions)
        and all(p.leader >= 0 and p.error is None for p in topic.partitions.values())
    )


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
