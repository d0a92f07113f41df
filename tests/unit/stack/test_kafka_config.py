"""KafkaNode: ports, the controller quorum and replication settings per cluster size."""

from __future__ import annotations

from pathlib import Path

import pytest

from eos.stack.kafka import KafkaNode, random_cluster_id
from eos.stack.layout import StackLayout
from eos.stack.stack import StackSpec


def _props(node_id: int, cluster_size: int, base_port: int = 19092) -> dict[str, str]:
    return KafkaNode(node_id, cluster_size, base_port).properties(Path("/data") / f"k{node_id}")


def test_single_node_listens_on_the_base_port_and_the_next_for_its_controller() -> None:
    node = KafkaNode(1, 1, 19092)
    assert (node.name, node.port, node.controller_port) == ("kafka-1", 19092, 19093)
    props = _props(1, 1)
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["node.id"] == "1"
    assert props["process.roles"] == "broker,controller"
    assert props["log.dirs"] == str(Path("/data") / "k1")


def test_single_node_internal_topics_fit_one_broker() -> None:
    props = _props(1, 1)
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "share.coordinator.state.topic.replication.factor",
        "default.replication.factor",
    ):
        assert props[key] == "1", key
    for key in (
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.min.isr",
        "min.insync.replicas",
    ):
        assert props[key] == "1", key


@pytest.mark.parametrize(
    ("node_id", "port", "controller"),
    [(1, 19092, 19093), (2, 19094, 19095), (3, 19096, 19097)],
)
def test_three_nodes_take_two_ports_each(node_id: int, port: int, controller: int) -> None:
    node = KafkaNode(node_id, 3, 19092)
    assert (node.port, node.controller_port) == (port, controller)
    props = node.properties(Path("/d"))
    assert props["node.id"] == str(node_id)
    assert props["listeners"] == (
        f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}"
    )
    assert props["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{port}"


def test_three_nodes_share_one_quorum_of_all_controllers() -> None:
    expected = "1@127.0.0.1:19093,2@127.0.0.1:19095,3@127.0.0.1:19097"
    assert {_props(i, 3)["controller.quorum.voters"] for i in (1, 2, 3)} == {expected}


def test_three_nodes_replicate_internal_topics_three_times_with_min_isr_two() -> None:
    props = _props(2, 3)
    assert props["offsets.topic.replication.factor"] == "3"
    assert props["transaction.state.log.replication.factor"] == "3"
    assert props["share.coordinator.state.topic.replication.factor"] == "3"
    assert props["default.replication.factor"] == "3"
    assert props["transaction.state.log.min.isr"] == "2"
    assert props["share.coordinator.state.topic.min.isr"] == "2"
    assert props["min.insync.replicas"] == "2"


def test_replication_never_exceeds_the_cluster_size() -> None:
    props = _props(1, 2)
    assert props["transaction.state.log.replication.factor"] == "2"
    assert props["offsets.topic.replication.factor"] == "2"
    assert int(props["transaction.state.log.min.isr"]) <= 2


def test_topics_are_never_created_implicitly() -> None:
    props = _props(1, 1)
    assert props["auto.create.topics.enable"] == "false"
    assert props["group.initial.rebalance.delay.ms"] == "0"


def test_write_config_renders_every_property(tmp_path: Path) -> None:
    layout = StackLayout.create(tmp_path / "home", tmp_path / "run")
    node = KafkaNode(2, 3, 19092)
    config = node.write_config(layout)
    assert config == tmp_path / "run" / "config" / "kafka-2.properties"
    lines = dict(line.split("=", 1) for line in config.read_text().splitlines())
    assert lines == node.properties(layout.data_dir("kafka-2"))
    assert layout.data_dir("kafka-2").is_dir()
    assert (tmp_path / "run" / "config" / "log4j2.properties").exists()


def test_stack_spec_bootstrap_lists_every_broker() -> None:
    assert StackSpec(1, 19092).bootstrap_servers == "127.0.0.1:19092"
    assert StackSpec(3, 19092).bootstrap_servers == (
        "127.0.0.1:19092,127.0.0.1:19094,127.0.0.1:19096"
    )
    assert StackSpec(registry_port=18081).registry_url == "http://127.0.0.1:18081/apis/ccompat/v7"
    assert StackSpec(registry=False).registry_url is None


def test_cluster_ids_are_kafka_uuids() -> None:
    ids = {random_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for cid in ids:
        assert len(cid) == 22
        assert not cid.startswith("-")
        assert "=" not in cid


def test_the_controller_quorum_outlasts_a_node_stalled_for_seconds() -> None:
    # With the 2 s default a starved active controller kept resigning, and a bounced
    # broker's registration was refused as a duplicate until it gave up.
    assert int(_props(1, 3)["controller.quorum.fetch.timeout.ms"]) >= 10000


def test_a_lone_node_is_not_fenced_after_a_pause_but_a_cluster_keeps_failing_over() -> None:
    """Its own controller would fence it on resuming, leaving every partition leaderless
    for a moment, and transaction markers sent then are skipped (eos.stack.kafka)."""
    assert int(_props(1, 1)["broker.session.timeout.ms"]) >= 30_000  # the frozen-broker test
    assert all("broker.session.timeout.ms" not in _props(i, 3) for i in (1, 2, 3))


def test_a_lone_node_killed_and_restarted_outwaits_its_own_old_session() -> None:
    """A killed node's registration stays live for its session; the restarted broker is
    refused as a duplicate until it expires, and exits if it stops asking first."""
    props = _props(1, 1)
    session = int(props["broker.session.timeout.ms"])
    assert session <= 60_000
    assert int(props["initial.broker.registration.timeout.ms"]) >= session + 60_000
