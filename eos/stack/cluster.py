"""Which Kafka and schema registry a tool runs against.

An external cluster named by EOS_BOOTSTRAP_SERVERS (+ EOS_SCHEMA_REGISTRY_URL); else the
local stack (`eos stack`), started when it is not running and stopped again afterwards
(unless EOS_KEEP_STACK=1).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from eos.errors import ConfigurationError
from eos.stack.registry import RegistryNode
from eos.stack.stack import Stack, StackSpec, kafka_answers

__all__ = ["ConfigValue", "KafkaCluster", "external_cluster", "local_stack", "provide_cluster"]

ConfigValue = str | int | float | bool


@dataclass(frozen=True)
class KafkaCluster:
    bootstrap_servers: str
    schema_registry_url: str
    source: str  # "external", "testcontainers" or "local stack"
    # librdkafka's security settings (security.protocol, sasl.*, ssl.*) for every client
    security: Mapping[str, str] = field(default_factory=dict, repr=False)
    # the schema registry client's (basic.auth.user.info, ssl.*)
    registry_security: Mapping[str, str] = field(default_factory=dict, repr=False)

    def client_config(self, **extra: ConfigValue) -> dict[str, ConfigValue]:
        return {"bootstrap.servers": self.bootstrap_servers, **self.security, **extra}

    def registry_config(self, **extra: ConfigValue) -> dict[str, ConfigValue]:
        """A SchemaRegistryClient's configuration, with a bounded wait per request."""
        return {"url": self.schema_registry_url, "timeout": 10, **self.registry_security, **extra}


def external_cluster() -> KafkaCluster | None:
    """The cluster EOS_BOOTSTRAP_SERVERS names, or None when it is not set; its security
    settings are the processor's (EOS_SECURITY_PROTOCOL, EOS_SASL_*, EOS_SSL_*,
    EOS_SCHEMA_REGISTRY_BASIC_AUTH, EOS_SCHEMA_REGISTRY_CA_LOCATION, ...)."""
    bootstrap = os.environ.get("EOS_BOOTSTRAP_SERVERS")
    if not bootstrap:
        return None
    registry = os.environ.get("EOS_SCHEMA_REGISTRY_URL")
    if not registry:
        raise ConfigurationError(
            "EOS_BOOTSTRAP_SERVERS is set but EOS_SCHEMA_REGISTRY_URL is not; "
            "both are needed (the registry's Confluent-compatible URL)."
        )
    from eos.config import SecuritySettings

    security = SecuritySettings()
    return KafkaCluster(
        bootstrap, registry, "external", security.client_config(), security.registry_config()
    )


@contextlib.contextmanager
def local_stack() -> Iterator[KafkaCluster]:
    """The local stack on its default ports; started (and stopped after) when not running."""
    stack = Stack()
    spec = StackSpec()
    # Whoever started it, a broker and registry answering on the stack's ports will do.
    already = kafka_answers(spec.bootstrap_servers) and RegistryNode(spec.registry_port).ready()
    if not already:
        stack.up(spec)
    try:
        yield KafkaCluster(spec.bootstrap_servers, str(spec.registry_url), "local stack")
    finally:
        if not already and os.environ.get("EOS_KEEP_STACK") != "1":
            stack.down()


@contextlib.contextmanager
def provide_cluster() -> Iterator[KafkaCluster]:
    """The external cluster when one is named, else the local stack."""
    external = external_cluster()
    if external is not None:
        yield external
        return
    with local_stack() as cluster:
        yield cluster
