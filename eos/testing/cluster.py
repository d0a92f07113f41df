"""Which real Kafka and schema registry a test session runs against.

Order: an external cluster named by EOS_BOOTSTRAP_SERVERS (+ EOS_SCHEMA_REGISTRY_URL);
else containers when a Docker engine answers; else the local stack (`eos stack`),
started when it is not running. Never a mock: tests that use this claim broker
behaviour.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from eos.stack.cluster import ConfigValue, KafkaCluster, external_cluster, local_stack

__all__ = ["ConfigValue", "KafkaCluster", "provide_cluster"]


@contextlib.contextmanager
def provide_cluster() -> Iterator[KafkaCluster]:
    external = external_cluster()
    if external is not None:
        yield external
        return
    if os.environ.get("EOS_TEST_NO_DOCKER") != "1" and _docker_answers():
        with _containers() as cluster:
            yield cluster
        return
    with local_stack() as cluster:
        yield cluster


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:  # no SDK, no socket, or the engine refused: no Docker here
        return False
    return True


@contextlib.contextmanager
def _containers() -> Iterator[KafkaCluster]:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network
    from testcontainers.core.waiting_utils import wait_for_logs
    from testcontainers.kafka import KafkaContainer

    with Network() as network:
        kafka = (
            KafkaContainer("confluentinc/cp-kafka:7.7.1")
            .with_kraft()
            .with_network(network)
            .with_network_aliases("kafka")
            .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
            .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        )
        with kafka:
            registry = (
                DockerContainer("confluentinc/cp-schema-registry:7.7.1")
                .with_network(network)
                .with_exposed_ports(8081)
                .with_env("SCHEMA_REGISTRY_HOST_NAME", "schema-registry")
                .with_env("SCHEMA_REGISTRY_LISTENERS", "http://0.0.0.0:8081")
                .with_env("SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS", "BROKER://kafka:9092")
            )
            with registry:
                wait_for_logs(registry, "Server started", timeout=120)
                url = f"http://{registry.get_container_host_ip()}:{registry.get_exposed_port(8081)}"
                yield KafkaCluster(kafka.get_bootstrap_server(), url, "testcontainers")
