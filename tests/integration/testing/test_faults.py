"""The kit's fault helpers on a real app (`eos run events`): a member frozen past its
session timeout, and a broker of a 3-broker stack SIGKILLed and started again, while
input keeps arriving. Each run ends with the kit's exactly-once checks."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from eos.serde.schemas import contract
from eos.testing.apps import AppProcess, app_env, wait_until
from eos.testing.checks import assert_exactly_once, assert_no_hanging_transactions, by_field
from eos.testing.cluster import KafkaCluster
from eos.testing.stack import LocalStack
from eos.testing.topics import TopicSet, make_topics
from tests.integration.feeder import Feeder

CONTRACTS = {"events": contract("event"), "enriched": contract("enriched_event"), "dlq": None}


def _settings(topics: TopicSet, group: str, **extra: object) -> dict[str, object]:
    return {
        "group_id": group,
        "input_topics": topics["events"],
        "output_topic": topics["enriched"],
        "dlq_topic": topics["dlq"],
        "transactional_id_prefix": group,
        "batch_max_records": 100,
        "batch_max_ms": 50,
        **extra,
    }


def _check(cluster: KafkaCluster, topics: TopicSet) -> None:
    assert_exactly_once(
        cluster,
        topics["events"],
        [topics["enriched"]],
        dlq_topic=topics["dlq"],
        key=by_field(cluster, "id"),
    )
    assert_no_hanging_transactions(cluster, [topics["enriched"], topics["dlq"]])


def _processed(*apps: AppProcess) -> int:
    return sum(app.stats().get("records", 0) for app in apps)


def test_a_member_paused_past_its_session_timeout_hands_over_and_comes_back(
    eos_cluster: KafkaCluster,
    eos_topics: Callable[..., TopicSet],
    eos_app: Callable[..., AppProcess],
) -> None:
    """A frozen member's partitions go to the other while it sleeps; thawed, it finds
    its transaction refused, rejoins and works on, and nothing is done twice."""
    topics = eos_topics(CONTRACTS, partitions=4)
    group = f"pause-{uuid.uuid4().hex[:6]}"
    feeder = Feeder(eos_cluster, topics["events"])
    settings = _settings(topics, group, session_timeout_ms=6000)
    a, b = eos_app("events", name="a", **settings), eos_app("events", name="b", **settings)
    with feeder.flowing():
        wait_until(
            lambda: a.stats().get("records", 0) > 0 and b.stats().get("records", 0) > 0,
            60,
            "both to work",
            a,
            b,
        )
        a_before, b_before = a.stats()["records"], b.stats()["records"]
        assert a.pause_past_session_timeout() >= 9
        wait_until(lambda: _processed(a) > a_before, 60, "a to work again", a, b)
    a.wait_caught_up(eos_cluster, group, [topics["events"]])
    assert a.terminate() == 0, a.tail()
    assert b.terminate() == 0, b.tail()
    assert b.stats()["records"] > b_before
    assert a.logged("lost "), a.tail()
    _check(eos_cluster, topics)


def test_a_broker_bounced_under_load_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    with LocalStack.private(tmp_path / "stack", brokers=3) as stack:
        cluster = stack.cluster
        topics = make_topics(
            cluster, CONTRACTS, partitions=3, replication=3, config={"min.insync.replicas": "2"}
        )
        group = f"bounce-{uuid.uuid4().hex[:6]}"
        feeder = Feeder(cluster, topics["events"])
        env = app_env(
            cluster,
            _settings(
                topics,
                group,
                instance_id="bounce-1",
                metrics_port=0,
                state_dir=str(tmp_path / "state"),
            ),
        )
        app = AppProcess("events", env, "bounced").start()
        try:
            with feeder.flowing():
                wait_until(lambda: _processed(app) > 0, 60, "the app to work", app)
                before = {s.name: s.pid for s in stack.stack.status()}
                name = stack.bounce()
                after = {s.name: s.pid for s in stack.stack.status()}
                processed = _processed(app)
                wait_until(lambda: _processed(app) > processed, 60, "work after the bounce", app)
            assert after[name] not in (None, before[name])
            app.wait_caught_up(cluster, group, [topics["events"]])
            assert app.terminate() == 0, app.tail()
        finally:
            app.close()
        _check(cluster, topics)
