"""What a running processor shows an operator: Prometheus metrics, liveness, readiness.

Everything is read at scrape time from the processor's own bookkeeping (Stats, the
rebalance, the breaker, the registry's outage log) and from librdkafka's statistics, so
the record path pays nothing for it beyond the counters it keeps anyway. Reads race the
run loop harmlessly: each figure is one attribute read.

- live (`/healthz`): the run loop came round, or waited on purpose (a back-off), within
  `stall_s`, longer than any of the loop's own deadlines: past it, the loop is stuck.
- ready (`/readyz`): live, the group has given this member its assignment (maybe empty:
  a spare member is ready), no store partition is restoring, the registry is reachable.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from eos.engine.processor import Processor
from eos.engine.stats import Buckets
from eos.kafka.statistics import ClientStatistics

__all__ = ["ProcessorProbe"]


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _histogram(name: str, doc: str, buckets: Buckets) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, doc, buckets=buckets.cumulative(), sum_value=buckets.total)


class ProcessorProbe:
    def __init__(
        self, processor: Processor, stall_s: float, client: ClientStatistics | None = None
    ) -> None:
        self._p = processor
        self._stall_s = stall_s
        self._client = client

    def live(self) -> tuple[bool, str]:
        idle = time.monotonic() - self._p.stats.alive_at
        if idle > self._stall_s:
            return False, f"the run loop has not come round in {idle:.0f}s"
        return True, "the run loop is alive"

    def ready(self) -> tuple[bool, str]:
        live, why = self.live()
        restoring, remaining = self._p.rebalance.restoring
        down = self._p.registry_outage.down_since
        if not live:
            return False, why
        if self._p.rebalance.rebalances == 0:
            return False, "not yet given an assignment by the group"
        if restoring:
            return False, f"restoring {restoring} store partition(s), {remaining} offsets to go"
        if down is not None:
            return False, f"the schema registry is unreachable (for {time.monotonic() - down:.0f}s)"
        return True, "ready"

    def collect(self) -> Iterator[Metric]:
        yield from self._engine()
        yield from self._state()
        if self._client is not None:
            yield from self._clients(self._client)

    def _engine(self) -> Iterator[Metric]:
        s = self._p.stats
        yield _counter("eos_input_records", "Input records committed", s.records)
        yield _counter("eos_output_records", "Output records committed", s.outputs)
        dlq = CounterMetricFamily(
            "eos_dead_letters", "Records dead-lettered, by reason", labels=["reason"]
        )
        for reason, n in sorted(s.dead_letter_reasons.items()):
            dlq.add_metric([reason], n)
        yield dlq
        yield _counter("eos_transactions_committed", "Transactions committed", s.transactions)
        yield _counter("eos_transactions_aborted", "Transactions aborted", s.aborts)
        yield _counter("eos_retries", "Batches redone after a transient record error", s.retries)
        yield _counter("eos_producer_recoveries", "Producers replaced", s.recoveries)
        yield _counter("eos_registry_waits", "Batches held for the registry", s.registry_waits)
        yield _histogram("eos_commit_duration_seconds", "Time to commit a batch", s.commit_seconds)
        yield _histogram("eos_batch_size_records", "Input records per batch", s.batch_records)
        age = time.monotonic() - (s.last_commit_at or s.started)
        yield _gauge("eos_last_commit_age_seconds", "Since the last commit (or the start)", age)
        live, ready = self.live()[0], self.ready()[0]
        yield _gauge("eos_live", "1 while /healthz answers 200", float(live))
        yield _gauge("eos_ready", "1 while /readyz answers 200", float(ready))

    def _state(self) -> Iterator[Metric]:
        rb = self._p.rebalance
        yield _counter("eos_rebalances", "Assignments received from the group", rb.rebalances)
        yield _gauge(
            "eos_assigned_partitions", "Input partitions assigned", len(rb.assignment.partitions)
        )
        restoring, remaining = rb.restoring
        yield _gauge("eos_restore_partitions", "Store partitions still restoring", restoring)
        yield _gauge("eos_restore_remaining_offsets", "Changelog offsets to restore", remaining)
        yield _counter("eos_restored_records", "Changelog records restored", rb.restored)
        ratio, consecutive = self._p.breaker.state()
        yield _gauge("eos_breaker_dead_letter_ratio", "Dead-lettered share, recent window", ratio)
        yield _gauge("eos_breaker_consecutive_failures", "Dead-lettered in a row", consecutive)

    def _clients(self, client: ClientStatistics) -> Iterator[Metric]:
        snap = client.latest
        lag = GaugeMetricFamily(
            "eos_consumer_lag_records",
            "Records from the consumer's position to the partition's end",
            labels=["topic", "partition"],
        )
        for (topic, p), n in sorted(snap.lag.items()):
            lag.add_metric([topic, str(p)], n)
        yield lag
        queued = GaugeMetricFamily(
            "eos_kafka_queued_messages", "Messages in a client's queues", labels=["client"]
        )
        sent = CounterMetricFamily(
            "eos_kafka_messages_sent", "Messages sent to brokers", labels=["client"]
        )
        received = CounterMetricFamily(
            "eos_kafka_messages_received", "Messages received", labels=["client"]
        )
        for name in sorted(snap.queued):
            queued.add_metric([name], snap.queued[name])
            sent.add_metric([name], snap.sent_messages.get(name, 0))
            received.add_metric([name], snap.received_messages.get(name, 0))
        rtt = GaugeMetricFamily(
            "eos_kafka_broker_rtt_seconds", "Mean round trip", labels=["client", "broker"]
        )
        for (name, broker), seconds in sorted(snap.rtt_s.items()):
            rtt.add_metric([name, broker], seconds)
        yield from (queued, sent, received, rtt)
