"""`eos bench` at a small size against the real cluster: a row per mode in its JSON, and
none of the topics or schema subjects it made left behind (runs on one stack would pile
them up)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from eos.testing.cluster import KafkaCluster
from tests.integration.ledger.bench_run import run_bench

pytestmark = pytest.mark.slow


def _bench_topics(cluster: KafkaCluster) -> set[str]:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    return {t for t in admin.list_topics(timeout=30).topics if t.startswith("bench-")}


def _bench_subjects(cluster: KafkaCluster) -> set[str]:
    registry = SchemaRegistryClient(cluster.registry_config())
    return {s for s in registry.get_subjects() if s.startswith("bench-")}


def test_a_short_bench_writes_a_row_per_mode_and_deletes_its_topics_and_subjects(
    eos_cluster: KafkaCluster, tmp_path: Path
) -> None:
    before, subjects_before = _bench_topics(eos_cluster), _bench_subjects(eos_cluster)
    out = tmp_path / "latest.json"
    result = run_bench(
        eos_cluster,
        "--records", "2000",
        "--partitions", "2",
        "--rounds", "1",
        "--modes", "exactly_once,copy,ceiling",
        "--latency-seconds", "1",
        "--latency-warmup", "0",
        "--out", str(out),
        timeout=300,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    rows = json.loads(out.read_text())
    assert [r["mode"] for r in rows] == ["exactly_once", "copy", "ceiling"]
    assert all(r["records"] == 2000 and r["records_per_s"] > 0 for r in rows)
    assert "bench-in-" in output  # it did make topics
    assert "could not delete" not in output  # a subject never made counts as deleted
    assert _bench_topics(eos_cluster) - before == set()
    assert _bench_subjects(eos_cluster) - subjects_before == set()
