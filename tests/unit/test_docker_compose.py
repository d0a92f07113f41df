"""docker-compose.yml, checked without Docker: the wiring between the services.

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

from eos.cli.envcheck import known
from eos.stack.artifacts import APICURIO_VERSION, KAFKA_VERSION

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


def processors(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services.items() if name.startswith("processor-")}


def test_the_services_exist(services: dict[str, dict[str, Any]]) -> None:
    assert {"kafka", "schema-registry", "setup"} <= set(services)
    assert len(processors(services)) >= 2


def test_the_images_are_the_versions_eos_stack_runs(services: dict[str, dict[str, Any]]) -> None:
    assert services["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"
    assert services["schema-registry"]["image"] == f"apicurio/apicurio-registry:{APICURIO_VERSION}"


def test_every_published_port_is_bound_to_loopback_only(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
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


def test_kafka_keeps_its_data_in_a_volume(services: dict[str, dict[str, Any]]) -> None:
    kenv = env(services["kafka"])
    mounts = [str(v).split(":")[1] for v in services["kafka"].get("volumes", [])]
    assert kenv["KAFKA_LOG_DIRS"] in mounts


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


def test_processors_and_setup_use_the_listener_kafka_advertises_in_the_network(
    services: dict[str, dict[str, Any]],
) -> None:
    inside = _in_network_address(services)
    host, _, _ = inside.partition(":")
    assert host in {"kafka", services["kafka"].get("hostname")}
    for name in ["setup", *processors(services)]:
        assert env(services[name])["EOS_BOOTSTRAP_SERVERS"] == inside, name


def test_the_registry_stores_schemas_in_kafka_through_that_same_listener(
    services: dict[str, dict[str, Any]],
) -> None:
    renv = env(services["schema-registry"])
    assert renv["APICURIO_STORAGE_KIND"] == "kafkasql"
    assert renv["APICURIO_KAFKASQL_BOOTSTRAP_SERVERS"] == _in_network_address(services)


def test_processors_reach_the_registry_s_confluent_api_inside_the_network(
    services: dict[str, dict[str, Any]],
) -> None:
    target = next(str(p).rsplit(":", 1)[1] for p in services["schema-registry"]["ports"])
    for name in ["setup", *processors(services)]:
        url = env(services[name])["EOS_SCHEMA_REGISTRY_URL"]
        assert url == f"http://schema-registry:{target}/apis/ccompat/v7", name


def test_setup_runs_once_after_kafka_and_registry_and_before_every_processor(
    services: dict[str, dict[str, Any]],
) -> None:
    assert services["setup"]["command"] == ["ledger", "setup"]
    assert depends_on(services["setup"]) == {
        "kafka": "service_healthy",
        "schema-registry": "service_healthy",
    }
    assert depends_on(services["schema-registry"]) == {"kafka": "service_healthy"}
    for name, service in processors(services).items():
        assert depends_on(service) == {"setup": "service_completed_successfully"}, name
    for name in ("kafka", "schema-registry"):
        assert services[name].get("healthcheck"), f"{name} is waited on without a healthcheck"


def test_processors_restart_and_are_checked_on_healthz_of_their_metrics_port(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in ("kafka", "schema-registry", *processors(services)):
        assert services[name].get("restart") in ("unless-stopped", "always"), name
    for name, service in processors(services).items():
        port = env(service)["EOS_METRICS_PORT"]
        check = " ".join(service["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/healthz" in check, name
        assert service["command"] == ["run", "ledger"]


def test_each_processor_keeps_its_own_instance_id_and_state_volume(
    services: dict[str, dict[str, Any]],
) -> None:
    ids, volumes = set(), set()
    for name, service in processors(services).items():
        penv = env(service)
        ids.add(penv["EOS_INSTANCE_ID"])
        mounts = dict(str(v).split(":")[:2] for v in service["volumes"])
        assert penv["EOS_STATE_DIR"] in mounts.values(), name
        volumes |= {v for v, target in mounts.items() if target == penv["EOS_STATE_DIR"]}
    assert len(ids) == len(volumes) == len(processors(services))


def test_every_eos_variable_is_a_setting(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        unknown = {k for k in env(service) if k.startswith("EOS_")} - known()
        assert not unknown, f"{name}: {unknown}"


def test_processors_are_built_from_the_repository_dockerfile(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in ["setup", *processors(services)]:
        build = services[name]["build"]
        if isinstance(build, str):
            build = {"context": build}
        context = (COMPOSE.parent / build.get("context", ".")).resolve()
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{dockerfile} does not exist"
        assert (context / "pyproject.toml").is_file()

    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(r"^RUN pip install \.", text, re.M)
    assert re.search(r'^ENTRYPOINT \["eos"\]', text, re.M)
    assert re.search(r'^CMD \["run", "ledger"\]', text, re.M)
    # the state volume's mount point exists, owned by the user the processor runs as
    assert "/var/lib/eos" in text


def test_dockerignore_keeps_secrets_and_clutter_out_of_the_build() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".env", ".venv", "tests"} <= ignored
    assert not {"eos", "schemas", "pyproject.toml"} & ignored
