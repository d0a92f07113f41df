"""librdkafka's statistics JSON, read into the figures the metrics show."""

from __future__ import annotations

import json
from typing import Any

from eos.kafka.statistics import ClientStatistics


def _partition(fetch_state: str, app: int, committed: int, ls: int, hi: int) -> dict[str, Any]:
    return {
        "fetch_state": fetch_state,
        "app_offset": app,
        "committed_offset": committed,
        "ls_offset": ls,
        "hi_offset": hi,
        "consumer_lag": ls - committed,
    }


CONSUMER = {
    "name": "eos-a#consumer-1",
    "type": "consumer",
    "msg_cnt": 3,
    "replyq": 1,
    "rxmsgs": 500,
    "txmsgs": 0,
    "brokers": {
        "127.0.0.1:9092/1": {"nodeid": 1, "rtt": {"avg": 2500, "cnt": 4}},
        "GroupCoordinator": {"nodeid": -1, "rtt": {"avg": 0, "cnt": 0}},
    },
    "topics": {
        "payments": {
            "partitions": {
                "0": _partition("active", app=90, committed=10, ls=100, hi=102),
                "1": _partition("active", app=-1001, committed=40, ls=50, hi=50),
                "2": _partition("none", app=-1001, committed=-1001, ls=7, hi=7),
                "-1": _partition("none", app=-1001, committed=-1001, ls=-1, hi=-1),
            }
        }
    },
}


def test_lag_counts_from_the_position_to_the_last_stable_offset() -> None:
    stats = ClientStatistics()
    stats.callback(json.dumps(CONSUMER))
    # from the position (90), not from the consumer's own commits (10), which a
    # transactional app never makes; before any record, from the committed offset
    assert stats.latest.lag == {("payments", 0): 10, ("payments", 1): 10}


def test_client_figures_are_kept_per_client() -> None:
    stats = ClientStatistics()
    stats.callback(json.dumps(CONSUMER))
    stats.callback(json.dumps({"name": "eos-a#producer-2", "type": "producer", "txmsgs": 9}))
    snap = stats.latest
    assert snap.queued == {"eos-a#consumer-1": 4, "eos-a#producer-2": 0}
    assert snap.sent_messages["eos-a#producer-2"] == 9
    assert snap.rtt_s == {("eos-a#consumer-1", "127.0.0.1:9092/1"): 0.0025}


def test_unreadable_statistics_keep_the_last_figures() -> None:
    stats = ClientStatistics()
    stats.callback(json.dumps(CONSUMER))
    stats.callback("not json")
    assert stats.latest.lag[("payments", 0)] == 10
