"""`eos bench ledger` at a small size against the real cluster: one row per process
count in ledger.json, every payment and credit leg processed, no topic or schema subject
of its own left behind."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from eos.testing.cluster import KafkaCluster
from tests.integration.ledger.bench_run import run_bench

pytestmark = pytest.mark.slow

TIMEOUT = 400.0


def test_a_short_ledger_bench_writes_a_row_per_process_count_and_cleans_up(
    eos_cluster: KafkaCluster, tmp_path: Path
) -> None:
    out = tmp_path / "ledger.json"
    result = run_bench(
        eos_cluster,
        "ledger",
        "--payments", "3000",
        "--partitions", "3",
        "--processes", "2",
        "--rounds", "1",
        "--out", str(out),
        "--run-dir", str(tmp_path / "run"),
        timeout=TIMEOUT,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]

    rows = json.loads(out.read_text())
    assert [r["processes"] for r in rows] == [1, 2]
    for row in rows:
        assert {"processes", "payments", "seconds", "payments_per_s"} <= set(row)
        assert row["payments"] == 3000
        assert 10 < row["payments_per_s"] < 1_000_000
        assert row["seconds"] * row["payments_per_s"] == pytest.approx(3000, rel=0.01)
    assert re.search(r"2 processes over 1 \(bar >= \+40%\): [+-][\d.]+% \((met|NOT met)\)", output)

    tags = set(re.findall(r"(bledger-[0-9a-f]{6})-r\d+p\d+", output))
    assert len(tags) == 1, output[:2000]
    tag = tags.pop()
    admin = AdminClient({"bootstrap.servers": eos_cluster.bootstrap_servers})
    assert [t for t in admin.list_topics(timeout=30).topics if tag in t] == []
    registry = SchemaRegistryClient(eos_cluster.registry_config())
    assert [s for s in registry.get_subjects() if tag in s] == []
    # One processor (a supervisor of n workers) per run; its log stays, its state goes.
    assert sorted(p.suffix for p in (tmp_path / "run").iterdir()) == [".log"] * 2
