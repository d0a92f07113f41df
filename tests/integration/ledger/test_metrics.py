"""`eos run ledger` serves its metrics and probes while it processes, against the real
cluster: every metric the operations guide names is there, with values that agree with
what was produced, and /readyz turns 200 once the member holds its restored partitions."""

from __future__ import annotations

import os
import signal
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from eos.ledger.generator import LoadSpec, produce_payments
from eos.testing.cluster import KafkaCluster
from eos.testing.stack import free_ports
from eos.tools.demo import wait_caught_up
from tests.integration.ledger.private import LedgerProcessor, PrivateLedger, private_ledger
from tests.integration.processes import wait_until

pytestmark = pytest.mark.integration

PARTITIONS = 2
PAYMENTS = 2_000


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def _samples(port: int) -> dict[str, list[Sample]]:
    status, text = _get(port, "/metrics")
    assert status == 200, text
    out: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def _value(samples: dict[str, list[Sample]], name: str, **labels: str) -> float:
    found = [
        s.value
        for s in samples.get(name, [])
        if all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert found, f"no {name}{labels or ''} in {sorted(samples)}"
    return sum(found)


def _client_caught_up(port: int, payments: int) -> bool:
    """The latest statistics (every 5 s) show every payment received and no lag left."""
    m = _samples(port)
    received = sum(s.value for s in m.get("eos_kafka_messages_received_total", []))
    lags = [s.value for s in m.get("eos_consumer_lag_records", [])]
    return received >= payments and lags == [0] * 2 * PARTITIONS


@pytest.fixture
def ledger(eos_cluster: KafkaCluster) -> Iterator[tuple[LedgerProcessor, int, PrivateLedger]]:
    port = free_ports(19460, 1)
    private = private_ledger(eos_cluster, "lm", PARTITIONS)
    env = {**os.environ, **private.env, "EOS_METRICS_PORT": str(port)}
    proc = LedgerProcessor("metrics-a", env)
    yield proc, port, private
    if proc.alive():
        proc.kill()


def test_a_running_processor_serves_its_metrics_and_probes(
    ledger: tuple[LedgerProcessor, int, PrivateLedger],
) -> None:
    proc, port, private = ledger
    engine, settings = private.engine, private.ledger
    wait_until(lambda: _get(port, "/readyz")[0] == 200, 60, "/readyz to answer 200", proc)
    assert _get(port, "/healthz") == (200, "the run loop is alive\n")

    kinds = Counter[str]()
    for part in range(2):
        # librdkafka's statistics come every 5 s, and a producer's are served when it is
        # polled (in a commit): the second part's commits bring the first part's figures
        spec = LoadSpec(count=PAYMENTS // 2, accounts=50, garbage=0.01, seed=7 + part)
        kinds.update(produce_payments(engine, settings, spec).kinds)
        wait_caught_up(engine, settings, {proc.name: proc.proc}, timeout=120)
        wait_until(
            lambda: _client_caught_up(port, sum(kinds.values())),
            30,
            "the client statistics to count every payment and show no lag",
            proc,
        )
    m = _samples(port)
    garbage = kinds["undecodable"]
    inputs = sum(kinds.values())
    assert garbage > 0
    # each payment once, plus the credit legs read back from ledger.credits
    assert _value(m, "eos_input_records_total") >= inputs
    assert _value(m, "eos_output_records_total") > 0
    assert _value(m, "eos_dead_letters_total", reason="NOT_WIRE_FORMAT") == garbage
    committed = _value(m, "eos_transactions_committed_total")
    assert committed >= 1
    assert _value(m, "eos_transactions_aborted_total") == 0
    assert _value(m, "eos_commit_duration_seconds_count") == committed
    assert _value(m, "eos_batch_size_records_count") == committed
    assert _value(m, "eos_batch_size_records_sum") == _value(m, "eos_input_records_total")
    assert _value(m, "eos_retries_total") == 0
    assert _value(m, "eos_producer_recoveries_total") == 0
    assert _value(m, "eos_registry_waits_total") == 0
    assert 0 <= _value(m, "eos_last_commit_age_seconds") < 60
    assert _value(m, "eos_rebalances_total") >= 1
    assert _value(m, "eos_assigned_partitions") == 2 * PARTITIONS
    assert _value(m, "eos_restore_partitions") == 0
    assert _value(m, "eos_restore_remaining_offsets") == 0
    assert _value(m, "eos_restored_records_total") >= 0
    assert 0 <= _value(m, "eos_breaker_dead_letter_ratio") < 0.5
    assert _value(m, "eos_breaker_consecutive_failures") >= 0
    assert _value(m, "eos_live") == 1 and _value(m, "eos_ready") == 1
    assert _value(m, "eos_kafka_messages_received_total") >= inputs
    assert _value(m, "eos_kafka_messages_sent_total") > 0
    assert _value(m, "eos_kafka_queued_messages") >= 0
    assert _value(m, "eos_kafka_broker_rtt_seconds") > 0

    proc.signal(signal.SIGTERM)
    assert proc.wait(60) == 0
