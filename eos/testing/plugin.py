"""pytest plugin (entry point `pytest11`): a real Kafka broker and schema registry.

Fixtures:
- `eos_cluster` (session): bootstrap servers and registry URL of the cluster under test,
  and its security settings: with EOS_BOOTSTRAP_SERVERS, those of the processor's
  environment (EOS_SECURITY_PROTOCOL, EOS_SASL_*, EOS_SSL_*, EOS_SCHEMA_REGISTRY_*).
- `eos_registry`: a SchemaRegistryClient for it.
- `eos_topic`: a factory that creates uniquely named topics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from eos.testing.cluster import KafkaCluster, provide_cluster
from eos.testing.helpers import create_topic


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: needs a real Kafka broker and registry")


_CLUSTER_USED = pytest.StashKey[KafkaCluster]()


@pytest.fixture(scope="session")
def eos_cluster(request: pytest.FixtureRequest) -> Iterator[KafkaCluster]:
    with provide_cluster() as cluster:
        request.config.stash[_CLUSTER_USED] = cluster
        yield cluster


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    # Says which broker the run actually used, so a green run shows what it stands on.
    cluster = config.stash.get(_CLUSTER_USED, None)
    if cluster is not None:
        terminalreporter.write_line(
            f"eos: tests ran against the {cluster.source}: kafka {cluster.bootstrap_servers}, "
            f"schema registry {cluster.schema_registry_url}"
        )


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        "eos: integration tests run against a real broker and registry "
        "(EOS_BOOTSTRAP_SERVERS, else Docker, else the local stack)"
    ]


@pytest.fixture
def eos_registry(eos_cluster: KafkaCluster) -> SchemaRegistryClient:
    # A bounded wait per request: a registry request left unanswered fails, never hangs.
    return SchemaRegistryClient(eos_cluster.registry_config())


@pytest.fixture
def eos_topic(eos_cluster: KafkaCluster) -> Callable[..., str]:
    def make(prefix: str = "t", partitions: int = 1, **kwargs: object) -> str:
        return create_topic(eos_cluster, prefix, partitions, **kwargs)  # type: ignore[arg-type]

    return make
