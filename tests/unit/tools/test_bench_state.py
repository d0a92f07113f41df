"""`eos bench state`'s pure parts: reading restore lines from a processor's log, when
probes say it is processing, rates from offset samples, the figures, bars and table;
the records it fills the changelog with; its command line. No broker needed."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest
from click.testing import CliRunner

import eos.tools.bench_state as bench_state_module
from eos.cli import cli
from eos.errors import RunFailed
from eos.kafka.partitioner import partition_for
from eos.ledger.rules import canonical_payment_id
from eos.tools.bench_state_procs import _decisions, probe_accounts
from eos.tools.bench_state_report import (
    BARS,
    FIGURES,
    backlog_rate,
    bars,
    caught_up,
    compaction_pending_mb,
    full_restore,
    only_markers_maybe,
    parse_restore_line,
    processing_moments,
    render,
    status_mb,
    summarize_restore,
)

# What eos/engine/state.py logs today (the `eos run` format: asctime, level, logger).
OLD = (
    "2026-12-01 10:22:35,072 INFO eos.state: restored store balances partitions "
    "[0, 1, 2, 3, 4, 5] from 0 changelog records in 0.6s",
    "2026-12-01 10:22:38,489 INFO eos.state: restored store dedup partitions "
    "[0, 1, 2, 3, 4, 5] from 200000 changelog records in 3.4s",
)


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_the_current_restore_line_gives_store_records_seconds_and_time() -> None:
    line = parse_restore_line(OLD[1])
    assert line is not None
    assert (line.store, line.records, line.seconds) == ("dedup", 200_000, 3.4)
    assert line.at == pytest.approx(_stamp("2026-12-01 10:22:38.489"))


@pytest.mark.parametrize(
    ("text", "records", "seconds"),
    [
        ("restored store dedup partition 3: 1,234,567 records in 2.5s", 1_234_567, 2.5),
        ("store dedup[3] restored 1234 records from checkpoint 99 in 120ms", 1234, 0.12),
        ("Restored 5_000 changelog records of store dedup (partition 0) in 7 seconds", 5000, 7.0),
        ("restored store dedup partition 1 from offset 4000: 12 records, 0.05 s", 12, 0.05),
    ],
)
def test_other_wordings_of_a_restore_line_are_read_too(
    text: str, records: int, seconds: float
) -> None:
    line = parse_restore_line(text)
    assert line is not None
    assert line.records == records
    assert line.seconds == pytest.approx(seconds)
    assert line.at is None


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-01 10:22:34,464 INFO eos.processor: assigned payments[0], payments[1]",
        "restoring store dedup partitions [0, 1] from 300 records",  # not done yet
        "restored store dedup partitions [0, 1]",  # no count, no duration
        "processed 40000 records (9202/s), 20 transactions in 4.3s",  # not a restore
    ],
)
def test_lines_that_are_no_finished_restore_are_ignored(text: str) -> None:
    assert parse_restore_line(text) is None


def test_restores_one_after_another_span_from_the_first_start_to_the_last_end() -> None:
    summary = summarize_restore(["noise", *OLD])
    assert summary is not None
    assert summary.records == 200_000 and summary.lines == 2
    # balances started at 34.472 (35.072 - 0.6); dedup ended at 38.489
    assert summary.seconds == pytest.approx(38.489 - 34.472, abs=0.002)


def test_restores_side_by_side_count_their_wall_time_once() -> None:
    lines = [
        f"2026-12-01 10:00:0{5 + i},000 INFO eos.state: restored store dedup partition {i} "
        f"from 1000 records in {5 + i}.0s"
        for i in range(3)
    ]  # all started at 10:00:00, ended at :05, :06, :07
    summary = summarize_restore(lines)
    assert summary is not None
    assert (summary.records, summary.seconds) == (3000, 7.0)


def test_restore_lines_without_timestamps_add_up() -> None:
    summary = summarize_restore(
        ["restored store a from 10 records in 1.5s", "restored store b from 5 records in 2s"]
    )
    assert summary is not None
    assert (summary.records, summary.seconds) == (15, 3.5)
    assert summarize_restore(["nothing", "here"]) is None


def test_memory_figures_come_from_proc_status() -> None:
    status = "Name:\tpython\nVmPeak:\t  900000 kB\nVmHWM:\t  614400 kB\nVmRSS:\t  204800 kB\n"
    assert status_mb(status, "VmHWM") == 600.0
    assert status_mb(status, "VmRSS") == 200.0
    assert status_mb("", "VmHWM") is None


def test_processing_means_every_partition_answered_a_probe_sent_after_the_spawn() -> None:
    sent = {"old": (0, 9.0), "a": (0, 10.1), "b": (1, 10.1), "c": (0, 10.2), "d": (1, 10.2)}
    seen = {"old": 10.5, "a": 12.0, "c": 12.1}
    assert processing_moments(sent, seen, since=10.0, partitions=2) is None  # 1 not yet
    seen["d"] = 13.0
    assert processing_moments(sent, seen, since=10.0, partitions=2) == (12.0, 13.0)
    seen["b"] = 12.5  # an earlier answer for partition 1
    assert processing_moments(sent, seen, since=10.0, partitions=2) == (12.0, 12.5)
    seen["unknown"] = 1.0  # an answer to no probe of ours
    assert processing_moments(sent, seen, since=10.0, partitions=2) == (12.0, 12.5)


def test_backlog_rate_runs_from_the_last_idle_sample_to_done() -> None:
    samples = [(0.0, 0), (5.0, 0), (6.0, 0), (6.5, 500), (8.0, 1900), (9.0, 2000)]
    assert backlog_rate(samples, count=1000, done_at=9.0) == 333.3  # 1000 in 3 s
    # Already under way at the first sample: from that sample.
    assert backlog_rate([(1.0, 400), (2.0, 2000)], 1000, 2.0) == 1000.0
    with pytest.raises(ValueError):
        backlog_rate(samples, count=0, done_at=9.0)
    with pytest.raises(ValueError):
        backlog_rate([], count=10, done_at=9.0)


def test_caught_up_allows_a_commit_marker_only_on_transactional_partitions() -> None:
    pay, cred = ("payments", 0), ("credits", 0)
    written = {pay: 100, cred: 51}
    stable = {cred: 51}
    assert caught_up({pay: 100, cred: 50}, written, stable, marked=[cred])
    assert not caught_up({pay: 99, cred: 51}, written, stable, marked=[cred])
    assert not caught_up({pay: 100, cred: 49}, written, stable, marked=[cred])
    assert not caught_up({pay: 100, cred: 50}, {pay: 100, cred: 51}, {}, marked=[])
    assert caught_up({pay: 100, cred: -1001}, {pay: 100, cred: 0}, {cred: 0}, marked=[cred])


def test_not_caught_up_while_a_transactional_partition_awaits_its_marker() -> None:
    # The group's offsets say the batch committed, but the credits partition has its
    # new legs (offset 50) without the marker yet: the last stable offset is behind.
    cred = ("credits", 0)
    assert not caught_up({cred: 50}, {cred: 51}, {cred: 50}, marked=[cred])
    assert caught_up({cred: 52}, {cred: 53}, {cred: 53}, marked=[cred])


def test_two_producers_trailing_markers_are_left_to_a_read_to_judge() -> None:
    # Two processors' last transactions on one credits partition: records A (48), B
    # (49), then markers A (50), B (51). The group committed 50 after reading B's record:
    # two past it, nothing to read, and nobody will ever commit further.
    pay, cred = ("payments", 0), ("credits", 0)
    written, stable = {pay: 100, cred: 52}, {cred: 52}
    committed = {pay: 100, cred: 50}
    assert not caught_up(committed, written, stable, marked=[cred])
    assert only_markers_maybe(committed, written, stable, [cred]) == {cred: 50}
    # A transaction still open, or an input partition behind: surely not caught up.
    assert only_markers_maybe(committed, written, {cred: 49}, [cred]) is None
    assert only_markers_maybe({**committed, pay: 99}, written, stable, [cred]) is None
    assert only_markers_maybe({pay: 100, cred: 51}, written, stable, [cred]) == {}


def test_full_restore_prefers_the_log_and_falls_back_to_spawn_to_processing() -> None:
    summary = summarize_restore(OLD)
    logged = full_restore(200_000, 7.7, summary)
    assert logged["full_restore_source"] == "log"
    assert logged["full_restore_records"] == 200_000
    assert logged["full_restore_records_per_s"] == pytest.approx(200_000 / 4.017, rel=1e-3)
    assert logged["full_spawn_to_processing_seconds"] == 7.7
    probed = full_restore(200_000, 8.0, None)
    assert probed["full_restore_source"] == "probe"
    assert (probed["full_restore_seconds"], probed["full_restore_records_per_s"]) == (8.0, 25_000)


def _result(**over: object) -> dict[str, object]:
    result: dict[str, object] = {
        "keys": 10_000_000,
        "restart_resume_seconds": 4.2,
        "sigkill_resume_seconds": 6.0,
        "full_restore_seconds": 50.0,
        "full_restore_records_per_s": 200_000.0,
        "peak_rss_mb": 512.0,
        "ledger_payments_per_s_empty": 8000.0,
        "ledger_payments_per_s_10m": 7000.0,
        "throughput_ratio": 0.875,
    }
    result.update(over)
    return result


def test_each_bar_is_judged_on_its_figure() -> None:
    verdicts = bars(_result())
    assert {name: v["met"] for name, v in verdicts.items()} == {
        "restart_resume_seconds": True,
        "full_restore_records_per_s": True,
        "peak_rss_mb": True,
        "throughput_ratio": False,
    }
    edges = bars(_result(restart_resume_seconds=5.0, peak_rss_mb=600.0, throughput_ratio=0.9))
    assert edges["restart_resume_seconds"]["met"] is True
    assert edges["peak_rss_mb"]["met"] is False  # the bar is strictly below 600 MB
    assert edges["throughput_ratio"]["met"] is True
    assert bars(_result(peak_rss_mb=None))["peak_rss_mb"]["met"] is None
    json.dumps(verdicts)  # what state.json holds


def test_the_table_shows_each_figure_with_its_bar_and_verdict() -> None:
    result = _result(peak_rss_mb=None)
    result["bars"] = bars(result)
    table = render(result)
    assert re.search(r"restart after SIGTERM \(s\)\s+4\.20\s+<= 5 s\s+pass", table)
    assert re.search(r"ratio\s+0\.875\s+>= 0\.90 x empty\s+FAIL", table)
    assert re.search(r"peak RSS \(MB\)\s+-\s+< 600 MB\s+n/a", table)
    assert "10,000,000" in table


def test_every_bar_is_on_a_figure_state_json_always_has() -> None:
    assert {b.figure for b in BARS} <= set(FIGURES)


def test_the_fill_writes_what_the_ledger_writes_for_a_posted_debit() -> None:
    records = list(_decisions(25_000, now_ms=1_700_000_000_000, chunk=10_000))
    assert len(records) == 25_000 and len({k for k, _ in records}) == 25_000
    for key, value in records[::997]:
        payment_id = key.removeprefix("D:")
        assert key.startswith("D:") and canonical_payment_id(payment_id) == payment_id
        assert payment_id[14] == "4" and payment_id[19] in "89ab"  # a UUIDv4
        decoded = json.loads(value)
        assert decoded["t"] == 1_700_000_000_000 and decoded["s"] == "POSTED"
        assert decoded["r"] is None and isinstance(decoded["b"], int)
        assert re.fullmatch(r"[0-9a-f]{16}", decoded["f"])
        assert json.dumps(decoded) == value  # byte for byte what the store encodes


def test_probe_accounts_reach_every_partition_in_order() -> None:
    accounts = probe_accounts(6)
    assert [partition_for(a.encode(), 6) for a in accounts] == list(range(6))
    assert all(a.startswith("ext:") for a in accounts)  # may go negative: never rejected


def test_bench_state_shows_its_options_and_bench_keeps_its_own() -> None:
    runner = CliRunner()
    state = runner.invoke(cli, ["bench", "state", "--help"], prog_name="eos")
    assert state.exit_code == 0, state.output
    for option in ("--keys", "--partitions", "--payments", "--check", "--out", "--run-dir"):
        assert option in state.output
    assert "10000000" in state.output
    bench = runner.invoke(cli, ["bench", "--help"], prog_name="eos")
    assert bench.exit_code == 0, bench.output
    assert "--records" in bench.output and "state" in bench.output


def test_bars_are_reported_and_fail_the_command_only_with_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = _result()  # the throughput ratio misses its bar
    result["bars"] = bars(result)
    monkeypatch.setattr(bench_state_module, "bench_state", lambda _opts: result)
    runner = CliRunner()
    plain = runner.invoke(cli, ["bench", "state", "--keys", "10"], prog_name="eos")
    assert plain.exit_code == 0, plain.output
    checked = runner.invoke(cli, ["bench", "state", "--check"], prog_name="eos")
    assert checked.exit_code == 1
    assert "bars missed: throughput_ratio" in checked.output


def test_a_failed_bench_exits_1_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(_opts: object) -> dict[str, object]:
        raise RunFailed("processor x exited with 1 during full restore (log y): boom")

    monkeypatch.setattr(bench_state_module, "bench_state", failing)
    out = CliRunner().invoke(cli, ["bench", "state"], prog_name="eos")
    assert out.exit_code == 1
    assert out.output.strip().splitlines() == [
        "eos bench state: processor x exited with 1 during full restore (log y): boom"
    ]


def test_the_compaction_still_pending_is_read_from_the_last_progress_line() -> None:
    lines = [
        "... lag 0; stores: 9 keys, 5 MB on disk, 7 MB to compact, 1 compaction(s) running",
        "... restored x[0]: 5 records in 0.1s",
        "... lag 0; stores: 9 keys, 5 MB on disk, 0 MB to compact, 1 compaction(s) running",
        "... lag 0; stores: 9 keys, 5 MB on disk, 0 MB to compact, 0 compaction(s) running",
    ]
    assert compaction_pending_mb(lines) == 0
    assert compaction_pending_mb(lines[:3]) == 1  # still running, nothing else pending
    assert compaction_pending_mb(lines[:2]) == 7
    assert compaction_pending_mb(["no stores here"]) is None
