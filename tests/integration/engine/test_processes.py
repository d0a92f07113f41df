"""`eos run --processes 2` on a real broker: two workers share the group, a SIGKILLed
worker is restarted by the supervisor, SIGTERM to the supervisor stops both cleanly,
and every event is processed exactly once."""

from __future__ import annotations

import os
import re
import signal
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import fastavro

from eos.serde.schemas import contract
from eos.serde.wire import split
from eos.testing.apps import AppProcess, app_env, wait_until
from eos.testing.checks import assert_exactly_once, assert_no_hanging_transactions, by_field
from eos.testing.cluster import KafkaCluster
from eos.testing.helpers import read_committed
from eos.testing.topics import TopicSet
from tests.integration.feeder import Feeder

CONTRACTS = {"events": contract("event"), "enriched": contract("enriched_event"), "dlq": None}
ENRICHED = contract("enriched_event").parsed


def _worker_pids(app: AppProcess) -> dict[int, int]:
    """Worker index -> pid of its latest start, from the supervisor's lines."""
    pids = {}
    for line in app.logged("eos run: worker "):
        found = re.search(r"worker (\d+) started, pid (\d+)", line)
        if found:
            pids[int(found[1])] = int(found[2])
    return pids


def _processed_by(cluster: KafkaCluster, topic: str) -> Counter[str]:
    out: Counter[str] = Counter()
    for m in read_committed(cluster, topic):
        value = fastavro.schemaless_reader(split(m.value())[1], ENRICHED, None)
        assert isinstance(value, dict)
        out[str(value["processed_by"])] += 1
    return out


def test_two_workers_share_the_work_survive_a_kill_and_stop_together(
    eos_cluster: KafkaCluster, eos_topics: Callable[..., TopicSet], tmp_path: Path
) -> None:
    topics = eos_topics(CONTRACTS, partitions=4)
    group = f"procs-{uuid.uuid4().hex[:6]}"
    feeder = Feeder(eos_cluster, topics["events"])
    settings = {
        "group_id": group,
        "input_topics": topics["events"],
        "output_topic": topics["enriched"],
        "dlq_topic": topics["dlq"],
        "transactional_id_prefix": group,
        "instance_id": "pay",
        "metrics_port": 0,
        "session_timeout_ms": 6000,
        "batch_max_records": 100,
        "state_dir": str(tmp_path),
    }
    app = AppProcess("events", app_env(eos_cluster, settings), "sup", ["--processes", "2"])
    app.start()
    try:
        with feeder.flowing():
            wait_until(lambda: len(_worker_pids(app)) == 2, 30, "two workers", app)
            feeder.send(2000)
            first = _worker_pids(app)[1]
            wait_until(lambda: bool(app.logged("instance pay-w1")), 60, "worker 1 to work", app)
            os.kill(first, signal.SIGKILL)
            wait_until(
                lambda: _worker_pids(app).get(1, first) != first, 30, "worker 1 restarted", app
            )
            feeder.send(2000)
        app.wait_caught_up(eos_cluster, group, [topics["events"]])
        assert app.terminate() == 0, app.tail()
    finally:
        app.close()
    assert app.logged("worker 1 exited on SIGKILL; restart in"), app.tail()
    assert len(app.logged("exited 0")) == 2, app.tail()
    assert_exactly_once(
        eos_cluster,
        topics["events"],
        [topics["enriched"]],
        dlq_topic=topics["dlq"],
        key=by_field(eos_cluster, "id"),
    )
    assert_no_hanging_transactions(eos_cluster, [topics["enriched"], topics["dlq"]])
    assert set(_processed_by(eos_cluster, topics["enriched"])) == {"pay-w1", "pay-w2"}
