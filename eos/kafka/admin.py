"""Topic administration for tools and tests: a uniquely named topic, created and waited for."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from eos.kafka.clients import connection_config

__all__ = ["create_topic"]


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
    futures = admin.create_topics(
        [NewTopic(name, partitions, replication, config=dict(config or {}))],
        operation_timeout=30,
    )
    futures[name].result(timeout=60)
    return name
