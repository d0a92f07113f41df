"""librdkafka's statistics (`statistics.interval.ms`), kept as the latest figures.

The callback runs on the thread that polls the client, every interval; it only parses
and stores. Readers (the metrics endpoint, another thread) take the latest snapshot,
replaced whole, never mutated.

Lag is the position's: last stable offset (the high watermark for a read_uncommitted
client) less the next offset the application will consume, as Kafka's own
`records-lag`. librdkafka's `consumer_lag` counts from the offsets the consumer itself
committed, which a transactional app never does (its offsets commit in the producer's
transaction), so it would stay at the lag of the assignment.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ClientStatistics", "StatisticsSnapshot"]

log = logging.getLogger("eos.kafka")


@dataclass(frozen=True)
class StatisticsSnapshot:
    lag: dict[tuple[str, int], int] = field(default_factory=dict)  # assigned partitions
    queued: dict[str, int] = field(default_factory=dict)  # client -> messages in its queues
    rtt_s: dict[tuple[str, str], float] = field(default_factory=dict)  # (client, broker)
    received_messages: dict[str, int] = field(default_factory=dict)
    sent_messages: dict[str, int] = field(default_factory=dict)


class ClientStatistics:
    """Give `callback` as a client's `stats_cb`; read `latest`."""

    def __init__(self, interval_ms: int = 5000) -> None:
        self.interval_ms = interval_ms
        self._by_client: dict[str, dict[str, Any]] = {}
        self.latest = StatisticsSnapshot()

    def config(self) -> dict[str, Any]:
        """The client properties that turn the statistics on and route them here."""
        return {"statistics.interval.ms": self.interval_ms, "stats_cb": self.callback}

    def callback(self, raw: str) -> None:
        try:
            stats = json.loads(raw)
            self._by_client[str(stats["name"])] = stats
            self.latest = self._snapshot()
        except Exception as exc:  # figures to watch, never a reason to stop
            log.debug("unreadable client statistics: %s", exc)

    def _snapshot(self) -> StatisticsSnapshot:
        snap = StatisticsSnapshot()
        for name, stats in self._by_client.items():
            snap.queued[name] = int(stats.get("msg_cnt", 0)) + int(stats.get("replyq", 0))
            snap.received_messages[name] = int(stats.get("rxmsgs", 0))
            snap.sent_messages[name] = int(stats.get("txmsgs", 0))
            for broker, b in stats.get("brokers", {}).items():
                if b.get("nodeid", -1) >= 0 and b.get("rtt", {}).get("cnt", 0) > 0:
                    snap.rtt_s[(name, broker)] = b["rtt"]["avg"] / 1e6
            if stats.get("type") == "consumer":
                snap.lag.update(_lags(stats))
        return snap


def _lags(stats: dict[str, Any]) -> dict[tuple[str, int], int]:
    out: dict[tuple[str, int], int] = {}
    for topic, t in stats.get("topics", {}).items():
        for key, p in t.get("partitions", {}).items():
            partition = int(key)
            if partition < 0 or p.get("fetch_state") in ("none", "stopped"):
                continue
            end = p.get("ls_offset", -1)
            end = end if end >= 0 else p.get("hi_offset", -1)
            position = p.get("app_offset", -1)
            if position < 0:
                position = p.get("committed_offset", -1)
            if end >= 0 and position >= 0:
                out[(topic, partition)] = max(end - position, 0)
    return out
