"""pytest plugin (entry point `pytest11`): a real Kafka broker and schema registry.

Fixtures:
- `eos_cluster` (session): bootstrap servers and registry URL of the cluster under test,
  and its security settings: with EOS_BOOTSTRAP_SERVERS, those of the processor's
  environment (EOS_SECURITY_PROTOCOL, EOS_SASL_*, EOS_SSL_*, EOS_SCHEMA_REGISTRY_*).
- `eos_registry`: a SchemaRegistryClient for it.
- `eos_topic`: a factory that creates uniquely named topics.
- `eos_topics`: a factory that creates a set of topics under unique names and registers
  their contracts.
- `eos_app`: a factory that starts an app (`module:factory`, or a known app) as a real
  `eos run` process on the cluster (eos.testing.apps.AppProcess: kill, pause, terminate,
  restart, wait until caught up, read its totals); each is ended after its test.
Topics the fixtures create are deleted when the test session ends. Nothing is printed
unless a test used the cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from eos.serde.avro import AvroContract
from eos.testing.apps import AppProcess, app_env
from eos.testing.cluster import KafkaCluster, provide_cluster
from eos.testing.helpers import create_topic, delete_created
from eos.testing.topics import TopicSet, make_topics


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: needs a real Kafka broker and registry")


_CLUSTER_USED = pytest.StashKey[KafkaCluster]()


@pytest.fixture(scope="session")
def eos_cluster(request: pytest.FixtureRequest) -> Iterator[KafkaCluster]:
    with provide_cluster() as cluster:
        request.config.stash[_CLUSTER_USED] = cluster
        try:
            yield cluster
        finally:
            delete_created(cluster)


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


@pytest.fixture
def eos_registry(eos_cluster: KafkaCluster) -> SchemaRegistryClient:
    # A bounded wait per request: a registry request left unanswered fails, never hangs.
    return SchemaRegistryClient(eos_cluster.registry_config())


@pytest.fixture
def eos_topic(eos_cluster: KafkaCluster) -> Callable[..., str]:
    def make(prefix: str = "t", partitions: int = 1, **kwargs: object) -> str:
        return create_topic(eos_cluster, prefix, partitions, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def eos_topics(eos_cluster: KafkaCluster) -> Callable[..., TopicSet]:
    """`eos_topics({"orders": contract, "orders.dlq": None}, partitions=3)`: the topics
    under unique names (`.name("orders")`), each contract registered under its topic's
    subject."""

    def make(
        contracts: Mapping[str, AvroContract | None], partitions: int = 1, **kwargs: object
    ) -> TopicSet:
        return make_topics(eos_cluster, contracts, partitions, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def eos_app(eos_cluster: KafkaCluster, tmp_path: Path) -> Iterator[Callable[..., AppProcess]]:
    """`eos_app("mypkg.app:build", group_id=..., dlq_topic=..., MY_SETTING=...)`: the app
    started, with its own state folder and instance id, no metrics port; settings are
    EOS_ settings by field name, or any variable by its full upper-case name."""
    started: list[AppProcess] = []

    def start(app: str, *args: str, name: str | None = None, **settings: object) -> AppProcess:
        n = len(started) + 1
        defaults = {
            "instance_id": f"test-{n}",
            "state_dir": str(tmp_path / f"state-{n}"),
            "metrics_port": 0,
        }
        env = app_env(eos_cluster, {**defaults, **settings})
        proc = AppProcess(app, env, name or f"app-{n}", args).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.close()
