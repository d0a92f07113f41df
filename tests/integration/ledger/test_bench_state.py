"""`eos bench state` at a small size against the real cluster: it runs every phase, writes
state.json with every figure, and leaves none of its topics behind. The 10 M run is
`eos bench state` itself."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from eos.testing.cluster import KafkaCluster
from eos.tools.bench_state_report import BARS, FIGURES
from tests.integration.ledger.bench_run import run_bench

pytestmark = pytest.mark.slow

TIMEOUT = 400.0  # about a minute on 2 cores


def test_a_short_state_bench_writes_every_figure_and_cleans_up(
    eos_cluster: KafkaCluster, tmp_path: Path
) -> None:
    out = tmp_path / "state.json"
    result = run_bench(
        eos_cluster,
        "state",
        "--keys", "20000",
        "--payments", "2000",
        "--partitions", "3",
        "--out", str(out),
        "--run-dir", str(tmp_path / "run"),
        timeout=TIMEOUT,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]

    figures = json.loads(out.read_text())
    assert set(FIGURES) <= set(figures), output[-3000:]
    assert (figures["keys"], figures["payments"], figures["partitions"]) == (20000, 2000, 3)
    # The restore read at least the keys filled (plus what the probes added).
    if figures["full_restore_source"] == "log":
        assert figures["full_restore_records"] >= 20000
    assert 0 < figures["full_restore_seconds"] <= figures["full_spawn_to_processing_seconds"]
    assert figures["full_restore_records_per_s"] > 0
    for resume in ("restart_resume_seconds", "sigkill_resume_seconds"):
        assert 0.2 < figures[resume] < 120, resume  # a process start takes some time
    assert 30 < figures["peak_rss_mb"] < 4000  # a Python process with a small store
    for rate in ("ledger_payments_per_s_empty", "ledger_payments_per_s_10m"):
        assert 10 < figures[rate] < 1_000_000, rate
        rounds = figures[f"{rate}_rounds"]
        assert len(rounds) == 2 and figures[rate] == max(rounds), rate
    assert figures["throughput_ratio"] == pytest.approx(
        figures["ledger_payments_per_s_10m"] / figures["ledger_payments_per_s_empty"], abs=0.002
    )
    assert set(figures["bars"]) == {b.figure for b in BARS}
    assert all(v["met"] in (True, False) for v in figures["bars"].values())
    assert re.search(r"restart after SIGTERM \(s\)\s+[\d.]+\s+<= 5 s\s+(pass|FAIL)", output)

    tags = re.findall(r"private topics (\S+)\.\* and (\S+)\.\*", output)
    assert tags, output[:2000]
    admin = AdminClient({"bootstrap.servers": eos_cluster.bootstrap_servers})
    left = [
        t
        for t in admin.list_topics(timeout=30).topics
        if any(t.startswith(f"{tag}.") or t.endswith(f".{tag}") for tag in tags[0])
    ]
    assert left == []
    # The state dirs go; the processor logs stay: full restore, restart, SIGKILL (which
    # also funds its set), the empty set's funding, and two backlog rounds per set.
    assert sorted(p.suffix for p in (tmp_path / "run").iterdir()) == [".log"] * 8
