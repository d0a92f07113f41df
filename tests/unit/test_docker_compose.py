"""docker-compose.yml, checked without Docker: the wiring between the three services.

The mistakes that matter here only show at run time (a client told to use a listener the
broker does not advertise, transactions hanging on a replication factor of 3 with one
broker), so they are checked statically.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict) and isinstance(doc.get("services"), dict)
    return doc["services"]  # type: ignore[no-any-return]


def env(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as strings, from either the mapping or the list form."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {str(k): str(v) for k, v in raw.items()}


def published_ports(service: dict[str, Any]) -> set[int]:
    """Host ports, from the short ("9092:9092", "127.0.0.1:9092:9092") or long form."""
    out: set[int] = set()
    for port in service.get("ports", []):
        if isinstance(port, dict):
            out.add(int(port.get("published") or port["target"]))
        else:
            parts = str(port).split("/")[0].split(":")
            out.add(int(parts[-2] if len(parts) > 1 else parts[0]))
    return out


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """`NAME://host:port,...` as {NAME: (host, port)}; an empty host stays empty."""
    out = {}
    for item in value.split(","):
        name, _, address = item.strip().partition("://")
        host, _, port = address.rpartition(":")
        out[name] = (host, int(port))
    return out


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return {name: "service_started" for name in raw}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in raw.items()}


def _without_scheme(address: str) -> str:
    return address.split("://", 1)[-1]


def _in_network_address(services: dict[str, dict[str, Any]]) -> str:
    """The host:port Kafka advertises to containers (not the one for localhost)."""
    advertised = listeners(env(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"])
    inside = [f"{h}:{p}" for h, p in advertised.values() if h not in ("localhost", "127.0.0.1")]
    assert len(inside) == 1, advertised
    return inside[0]


def test_the_three_services_exist(services: dict[str, dict[str, Any]]) -> None:
    assert {"kafka", "schema-registry", "processor"} <= set(services)


def test_images(services: dict[str, dict[str, Any]]) -> None:
    kafka = services["kafka"]["image"]
    match = re.fullmatch(r"apache/kafka:(\d+)\.(\d+)\.(\d+)", kafka)
    assert match, f"kafka should run the official apache/kafka image, pinned: {kafka}"
    assert (int(match[1]), int(match[2]), int(match[3])) >= (4, 1, 1)
    assert int(match[1]) == 4

    registry = services["schema-registry"]["image"]
    match = re.fullmatch(r"confluentinc/cp-schema-registry:(\d+)\.(\d+)\.(\d+)", registry)
    assert match, f"the registry image should be pinned: {registry}"
    assert (int(match[1]), int(match[2])) >= (7, 7)


def test_kafka_and_registry_are_published_on_their_usual_ports(
    services: dict[str, dict[str, Any]],
) -> None:
    assert 9092 in published_ports(services["kafka"])
    assert 8081 in published_ports(services["schema-registry"])


def test_kafka_is_a_single_kraft_node(services: dict[str, dict[str, Any]]) -> None:
    kenv = env(services["kafka"])
    assert kenv["KAFKA_NODE_ID"] == "1"
    assert set(kenv["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    bound = listeners(kenv["KAFKA_LISTENERS"])
    controller = kenv["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert controller in bound
    voter_id, _, voter = kenv["KAFKA_CONTROLLER_QUORUM_VOTERS"].partition("@")
    assert voter_id == kenv["KAFKA_NODE_ID"]
    assert int(voter.rpartition(":")[2]) == bound[controller][1]
    protocols = dict(
        item.split(":") for item in kenv["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert set(bound) <= set(protocols)
    assert kenv["KAFKA_INTER_BROKER_LISTENER_NAME"] in bound
    if "CLUSTER_ID" in kenv:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", kenv["CLUSTER_ID"]), "not a Kafka UUID"


def test_kafka_internal_topics_fit_one_broker(services: dict[str, dict[str, Any]]) -> None:
    kenv = env(services["kafka"])
    assert kenv["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert kenv["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "1"
    assert kenv["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert kenv["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == "0"


def test_kafka_advertises_localhost_9092_on_a_listener_it_binds(
    services: dict[str, dict[str, Any]],
) -> None:
    kenv = env(services["kafka"])
    advertised = listeners(kenv["KAFKA_ADVERTISED_LISTENERS"])
    bound = listeners(kenv["KAFKA_LISTENERS"])
    host_side = [name for name, address in advertised.items() if address == ("localhost", 9092)]
    assert host_side, f"nothing advertises localhost:9092: {advertised}"
    assert bound[host_side[0]][1] == 9092, "the published port must be the bound one"
    for name, (_, port) in advertised.items():
        assert name in bound and bound[name][1] == port, f"{name} advertised but not bound"


def test_kafka_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    check = services["kafka"].get("healthcheck")
    assert check and check.get("test")


def test_processor_uses_the_listener_kafka_advertises_in_the_network(
    services: dict[str, dict[str, Any]],
) -> None:
    inside = _in_network_address(services)
    host, _, _ = inside.partition(":")
    kafka = services["kafka"]
    assert host in {"kafka", kafka.get("hostname")}, "advertised host must resolve to kafka"
    penv = env(services["processor"])
    assert penv["EOS_BOOTSTRAP_SERVERS"] == inside


def test_registry_stores_schemas_through_that_same_listener(
    services: dict[str, dict[str, Any]],
) -> None:
    renv = env(services["schema-registry"])
    store = renv["SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS"]
    assert [_without_scheme(s) for s in store.split(",")] == [_in_network_address(services)]


def test_processor_reaches_the_registry_inside_the_network(
    services: dict[str, dict[str, Any]],
) -> None:
    url = env(services["processor"])["EOS_SCHEMA_REGISTRY_URL"]
    assert url == "http://schema-registry:8081"


def test_start_order_waits_for_health(services: dict[str, dict[str, Any]]) -> None:
    assert depends_on(services["schema-registry"]) == {"kafka": "service_healthy"}
    processor = depends_on(services["processor"])
    assert set(processor) == {"kafka", "schema-registry"}
    assert processor["kafka"] == "service_healthy"
    if processor["schema-registry"] == "service_healthy":
        assert services["schema-registry"].get("healthcheck"), "waits on a missing healthcheck"


def test_processor_is_built_from_the_repository_dockerfile(
    services: dict[str, dict[str, Any]],
) -> None:
    build = services["processor"]["build"]
    if isinstance(build, str):
        build = {"context": build}
    context = (COMPOSE.parent / build.get("context", ".")).resolve()
    dockerfile = context / build.get("dockerfile", "Dockerfile")
    assert dockerfile.is_file(), f"{dockerfile} does not exist"
    assert (context / "pyproject.toml").is_file()

    text = dockerfile.read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(r"^RUN pip install \.", text, re.M)
    assert re.search(r'^ENTRYPOINT \["eos"\]', text, re.M)
    assert re.search(r'^CMD \["run", "ledger"\]', text, re.M)


def test_dockerignore_keeps_secrets_and_clutter_out_of_the_build() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".env", ".venv", "tests"} <= ignored
    assert not {"eos", "schemas", "pyproject.toml"} & ignored
