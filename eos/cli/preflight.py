"""Before a command starts work: can it reach the cluster and the registry? Within a
few seconds, one line naming the setting to fix, instead of librdkafka retrying a wrong
address for ever or an HTTP client's traceback.

EOS_STARTUP_WAIT=true (`--startup-wait true`) skips this: a service started before its
cluster waits for it (the engine retries both, as it does for any outage later on).
"""

from __future__ import annotations

import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from eos.cli.common import fail
from eos.config import EngineSettings
from eos.errors import ConfigurationError
from eos.kafka.clients import client_config_for_admin, make_registry
from eos.kafka.errors import kafka_error
from eos.logs import redact_urls

__all__ = ["REACH_TIMEOUT_S", "check_cluster", "check_registry", "reachable"]

REACH_TIMEOUT_S = 8.0  # the answer within 10 s, with the process's own start on top


def reachable(
    settings: EngineSettings,
    command: str = "eos run",
    *,
    cluster: bool = True,
    registry: bool = True,
) -> None:
    """Exit 2 in one line unless the cluster and the registry answer (not when told to
    wait for them: EOS_STARTUP_WAIT)."""
    if settings.startup_wait:
        return
    try:
        if cluster:
            check_cluster(settings)
        if registry:
            check_registry(settings)
    except ConfigurationError as exc:
        fail(f"{command}: {exc}", 2)


def check_cluster(settings: EngineSettings, timeout: float = REACH_TIMEOUT_S) -> None:
    """ConfigurationError unless a broker of EOS_BOOTSTRAP_SERVERS answers in time."""
    # librdkafka's own lines would repeat, many times over, the one line below. (No
    # Python logger: an admin client would call it from librdkafka's threads.)
    admin = AdminClient(
        {
            **client_config_for_admin(settings),
            "log_level": 0,
            "socket.connection.setup.timeout.ms": 5000,
        }
    )
    try:
        admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        why = kafka_error(exc).str()
        hint = "check EOS_BOOTSTRAP_SERVERS / --bootstrap-servers"
        if settings.security.security_protocol != "PLAINTEXT":
            hint += " and the EOS_SECURITY_PROTOCOL / EOS_SASL_* / EOS_SSL_* settings"
        raise ConfigurationError(
            f"cannot reach the Kafka cluster at {settings.bootstrap_servers} within "
            f"{timeout:.0f}s ({why}); {hint}"
        ) from None


def check_registry(settings: EngineSettings, timeout: float = REACH_TIMEOUT_S) -> None:
    """ConfigurationError unless the registry at EOS_SCHEMA_REGISTRY_URL answers in time
    (any answer but a refused login counts: a subject list, even an empty one)."""
    url = redact_urls(settings.schema_registry_url)
    registry = make_registry(settings, timeout=timeout, retries=0)
    started = time.monotonic()
    try:
        registry.get_subjects()
    except SchemaRegistryError as exc:
        if exc.http_status_code in (401, 403):
            raise ConfigurationError(
                f"the schema registry at {url} refused the credentials "
                f"(HTTP {exc.http_status_code}); check EOS_SCHEMA_REGISTRY_BASIC_AUTH"
            ) from None
        if exc.http_status_code == 404:
            raise ConfigurationError(
                f"no schema registry API at {url} (HTTP 404); check EOS_SCHEMA_REGISTRY_URL "
                "/ --schema-registry-url (Apicurio's is <host>/apis/ccompat/v7)"
            ) from None
        raise _unreachable(url, started, f"HTTP {exc.http_status_code}") from None
    except Exception as exc:  # the HTTP client's connection errors have no common root
        raise _unreachable(url, started, redact_urls(str(exc)) or type(exc).__name__) from None


def _unreachable(url: str, started: float, why: str) -> ConfigurationError:
    return ConfigurationError(
        f"cannot reach the schema registry at {url} ({why}, after "
        f"{time.monotonic() - started:.0f}s); check EOS_SCHEMA_REGISTRY_URL / "
        "--schema-registry-url"
    )
