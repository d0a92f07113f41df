"""Thin factories for the raw clients: configuration only, no delivery semantics."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from eos.config import EngineSettings, Mode

# librdkafka's own log (eos.logs collapses its repeats)
LIBRDKAFKA_LOGGER = "eos.librdkafka"
log = logging.getLogger(LIBRDKAFKA_LOGGER)

ConfigDict = dict[str, str | int | float | bool]


# The keys that say how to reach and authenticate to the cluster.
CONNECTION_PREFIXES = ("bootstrap.", "security.", "sasl.", "ssl.", "client.")


def connection_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Only the connection keys of `config`: for helper clients (admin, restore, readers)
    that must not inherit a group's or a producer's settings."""
    return {k: v for k, v in config.items() if k.startswith(CONNECTION_PREFIXES)}


def client_config_for_admin(settings: EngineSettings) -> ConfigDict:
    """The connection settings of a helper client (admin, reader) of `settings`."""
    return connection_config(_common(settings))


def make_admin(settings: EngineSettings) -> AdminClient:
    # No logger: confluent-kafka would call it from librdkafka's own threads, outside
    # any call of the client, and abort the process (CallState_get assertion).
    return AdminClient(client_config_for_admin(settings))


def client_id(settings: EngineSettings) -> str:
    """The clients' client.id: it names the instance to the brokers and the group."""
    return f"eos-{settings.instance_id}"


def _common(settings: EngineSettings) -> ConfigDict:
    config: ConfigDict = {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": client_id(settings),
    }
    config.update(settings.security.client_config())
    config.update(settings.client_overrides)
    return config


def consumer_config(settings: EngineSettings) -> ConfigDict:
    config = _common(settings)
    config.update(
        {
            "group.id": settings.group_id,
            # Only committed transactions are inputs; offsets move only with our transactions.
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": settings.auto_offset_reset,
            "max.poll.interval.ms": settings.max_poll_interval_ms,
        }
    )
    if settings.static_membership:
        config["group.instance.id"] = settings.instance_id
    if settings.group_protocol == "consumer":
        # KIP-848: the broker assigns; the client-side assignor settings do not apply.
        config["group.protocol"] = "consumer"
    else:
        config["partition.assignment.strategy"] = settings.partition_assignment_strategy
        config["session.timeout.ms"] = settings.session_timeout_ms
        config["heartbeat.interval.ms"] = settings.heartbeat_interval_ms
    return config


def producer_config(settings: EngineSettings) -> ConfigDict:
    config = _common(settings)
    config.update(
        {
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            # Java clients' partitioner: a key lands on the same partition whichever
            # client produced it, which co-partitioned topics rely on.
            "partitioner": "murmur2_random",
            "compression.type": "lz4",
        }
    )
    if settings.mode is Mode.EXACTLY_ONCE:
        config["transactional.id"] = settings.transactional_id
        config["transaction.timeout.ms"] = settings.transaction_timeout_ms
    return config


def make_consumer(
    settings: EngineSettings, partition_eof: bool = False, extra: Mapping[str, Any] | None = None
) -> Consumer:
    """`extra`: properties of this process's own (a statistics callback), not settings."""
    config = consumer_config(settings)
    config["enable.partition.eof"] = partition_eof
    config.update(extra or {})
    return Consumer(config, logger=log)


def make_producer(settings: EngineSettings, extra: Mapping[str, Any] | None = None) -> Producer:
    return Producer({**producer_config(settings), **(extra or {})}, logger=log)


def make_registry(
    settings: EngineSettings, timeout: float = 10, retries: int | None = None
) -> SchemaRegistryClient:
    """`timeout`: a bounded wait per request (a registry that hangs must not hang the
    caller); `retries`: the client's own retries of a failed request (None: its default)."""
    conf: dict[str, str | int | float] = {"url": settings.schema_registry_url, "timeout": timeout}
    if retries is not None:
        conf["max.retries"] = retries
    conf.update(settings.security.registry_config())
    return SchemaRegistryClient(conf)
