"""`eos bench state`: the ledger's state stores at scale, through the process boundary.

On two private sets of ledger topics (a unique prefix each): the dedup changelog of the
first is filled with `keys` debit decisions, produced straight to it; then, each time
by spawning `python -m eos run ledger` with its own EOS_STATE_DIR:
- full restore: from an empty state dir until it is processing (every partition has
  answered a probe payment sent after the spawn; probes flow every 100 ms); the restore
  time and records from the processor's own "restored ..." log lines when it logs them;
- restart after SIGTERM, and after SIGKILL, with the same state dir: spawn to processing;
- throughput: a preloaded backlog of payments, with the keys present and on the second
  (empty) set, from the group's committed offsets; `rounds` backlogs per set, the sets
  taking turns, the best of each set counting (all are recorded): on a shared machine
  a slow spell would otherwise decide the ratio.
The largest VmHWM of any processor is the peak RSS. Topics are deleted and processors
stopped at the end, whatever happened.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.schema_registry.error import SchemaRegistryError

from eos.errors import RunFailed
from eos.kafka.offsets import total
from eos.stack.cluster import provide_cluster
from eos.tools.bench_state_procs import Probes, Processor, fill_changelog
from eos.tools.bench_state_report import (
    backlog_rate,
    bars,
    compaction_pending_mb,
    full_restore,
    render,
    summarize_restore,
)
from eos.tools.ledger_rig import LedgerRig, TopicSet

__all__ = ["StateBenchOptions", "TopicSet", "bench_state", "run_state_bench"]


@dataclass(frozen=True)
class StateBenchOptions:
    keys: int = 10_000_000
    partitions: int = 6
    payments: int = 200_000
    accounts: int = 200
    rounds: int = 2  # throughput runs per store, taking turns; the best of each counts
    # Static membership: a restarted processor gets its partitions back at once, so the
    # resume figures measure the store, not the group's session timeout.
    static_membership: bool = True
    run_dir: Path | None = None  # default: bench-results/state-<tag>/
    out: Path = Path("bench-results/state.json")


def bench_state(opts: StateBenchOptions) -> dict[str, Any]:
    """The bench on the cluster `provide_cluster` finds; the figures (also written to
    `opts.out`). RunFailed when it cannot complete."""
    with provide_cluster() as cluster:
        print(f"cluster: {cluster.bootstrap_servers} ({cluster.source})", flush=True)
        return run_state_bench(cluster.bootstrap_servers, cluster.schema_registry_url, opts)


def run_state_bench(bootstrap: str, registry_url: str, opts: StateBenchOptions) -> dict[str, Any]:
    if opts.keys < 1 or opts.payments < 1 or opts.partitions < 1:
        raise RunFailed("--keys, --payments and --partitions must be at least 1")
    tag = f"bstate-{uuid.uuid4().hex[:6]}"
    run_dir = opts.run_dir or opts.out.parent / f"state-{tag}"
    run_dir.mkdir(parents=True, exist_ok=True)
    bench = _Bench(bootstrap, registry_url, opts, tag, run_dir)
    try:
        result = bench.run()
    except (KafkaException, SchemaRegistryError, OSError) as exc:
        # A client's or the system's failure, in one line like the bench's own.
        raise RunFailed(f"{type(exc).__name__}: {exc}") from exc
    finally:
        bench.close()
    result["logs"] = str(run_dir)
    result["bars"] = bars(result)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{render(result)}\n\nwritten to {opts.out}; processor logs in {run_dir}", flush=True)
    return result


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


class _Bench:
    def __init__(
        self, bootstrap: str, registry_url: str, opts: StateBenchOptions, tag: str, run_dir: Path
    ) -> None:
        self.opts = opts
        self.rig = LedgerRig(
            bootstrap, registry_url, run_dir, opts.partitions, opts.accounts, opts.static_membership
        )
        self.sets = [self.rig.topic_set(f"{tag}-k"), self.rig.topic_set(f"{tag}-e")]
        self.probes: Probes | None = None
        self.settle_seconds = 0.0

    def run(self) -> dict[str, Any]:
        opts, (filled, empty) = self.opts, self.sets
        step(f"1/5 private topics {filled.tag}.* and {empty.tag}.*, {opts.partitions} partitions")
        for ts in self.sets:
            self.rig.create(ts)
        step(f"2/5 filling {filled.ledger.dedup_changelog} with {opts.keys:,} keys")
        fill_seconds = fill_changelog(
            filled.engine, filled.ledger.dedup_changelog, opts.keys, opts.partitions
        )
        self._check_filled(filled)
        result: dict[str, Any] = {
            "bench": "state",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "host": socket.gethostname(),
            "cores": os.cpu_count(),
            "cluster": self.rig.bootstrap,
            "keys": opts.keys,
            "partitions": opts.partitions,
            "payments": opts.payments,
            "accounts": opts.accounts,
            "membership": "static" if opts.static_membership else "dynamic",
            "fill_seconds": round(fill_seconds, 3),
            "fill_records_per_s": round(opts.keys / max(fill_seconds, 1e-3), 1),
        }
        step("3/5 restores: from an empty state dir, after SIGTERM, after SIGKILL")
        proc = self._restores(filled, result)
        step(f"4/5 funding the accounts of both sets, the {opts.keys:,} keys present in one")
        self._fund(filled, proc)
        result["compaction_settle_seconds"] = round(self.settle_seconds, 1)
        self._fund(empty, None)
        step(f"5/5 throughput: {opts.payments:,} payments, {opts.rounds} round(s) per store")
        rates = self._rounds(filled, empty)
        result["ledger_payments_per_s_10m_rounds"] = rates[filled.tag]
        result["ledger_payments_per_s_empty_rounds"] = rates[empty.tag]
        result["ledger_payments_per_s_10m"] = max(rates[filled.tag])
        result["ledger_payments_per_s_empty"] = max(rates[empty.tag])
        result["throughput_ratio"] = round(
            result["ledger_payments_per_s_10m"] / result["ledger_payments_per_s_empty"], 3
        )
        result["peak_rss_mb"] = self.rig.peak.mb
        result["exit_codes"] = {p.name: p.code for p in self.rig.processors}
        return result

    def _check_filled(self, ts: TopicSet) -> None:
        parts = self.rig.offsets.partitions([ts.ledger.dedup_changelog])
        written = total(self.rig.offsets.high_watermarks(parts))
        if written != self.opts.keys:
            raise RunFailed(
                f"fill: the changelog holds {written:,} records, not {self.opts.keys:,}"
            )

    def _restores(self, ts: TopicSet, result: dict[str, Any]) -> Processor:
        """Phases (a) to (c); returns the processor still running after the last."""
        keys = self.opts.keys
        timeout = 120 + keys / 20_000  # generous: a slow store must still finish
        self.probes = probes = Probes(ts.engine, ts.ledger, ts.reply_topic, self.opts.partitions)
        proc = self.rig.spawn(ts, "full")
        report = functools.partial(self._restore_line, proc, keys)
        first, every = probes.wait_processing(proc, "full restore", timeout, report)
        result.update(full_restore(keys, every, summarize_restore(proc.lines())))
        result["full_first_partition_seconds"] = round(first, 3)
        print(
            f"  full restore: processing after {every:.1f}s ({result['full_restore_source']}: "
            f"{result['full_restore_records']:,} records in {result['full_restore_seconds']:.1f}s)"
        )
        for phase, sig in (("restart", signal.SIGTERM), ("sigkill", signal.SIGKILL)):
            time.sleep(2)  # at work on probes meanwhile: the signal lands on a busy processor
            proc.stop(sig)
            proc = self.rig.spawn(ts, phase)
            report = functools.partial(self._restore_line, proc, None)
            _first, every = probes.wait_processing(proc, f"{phase} resume", timeout, report)
            summary = summarize_restore(proc.lines())
            result[f"{phase}_resume_seconds"] = round(every, 3)
            result[f"{phase}_restored_records"] = None if summary is None else summary.records
            print(f"  after {sig.name}: processing after {every:.2f}s", flush=True)
        probes.sending.clear()  # the throughput phases count payments: no probes in them
        return proc

    def _restore_line(self, proc: Processor, expected: int | None, elapsed: float) -> None:
        """Progress of a restore seen from outside: the records its log says are
        restored so far; with `expected` records to restore, a rate and an ETA."""
        summary = summarize_restore(proc.lines())
        records = 0 if summary is None else summary.records
        line = f"  restore: {elapsed:.0f}s, rss {proc.rss_mb() or 0:,.0f} MB"
        line += f", restored per its log: {records:,} records"
        if expected and records:
            rate = records / max(elapsed, 1e-3)
            line += f" ({rate:,.0f}/s, ETA {max(expected - records, 0) / rate:.0f}s)"
        elif expected:
            line += f" (ETA at 150,000/s: {max(expected / 150_000 - elapsed, 0):.0f}s)"
        print(line, flush=True)

    def _fund(self, ts: TopicSet, proc: Processor | None) -> None:
        """Fund the accounts and let that settle (so outcomes do not depend on which
        partition runs first, and no compaction debt is left), then stop."""
        proc = proc or self.rig.spawn(ts, "fund")
        self.rig.load(ts, "only", self.opts.payments, 11)
        self.rig.drain(ts, proc, "funding", self.rig.committed_total(ts), None, self._timeout())
        self.settle_seconds = max(self.settle_seconds, self._settle(proc))
        proc.stop()

    def _rounds(self, filled: TopicSet, empty: TopicSet) -> dict[str, list[float]]:
        """Payments/s per round and store. The stores take turns, and the first to go
        alternates, so a slow spell of the shared machine (the broker's or the page
        cache's work) does not land on one store only; every round's backlog is new
        payments, the same ones for both stores."""
        rates: dict[str, list[float]] = {filled.tag: [], empty.tag: []}
        for n in range(self.opts.rounds):
            for ts in (filled, empty) if n % 2 == 0 else (empty, filled):
                rates[ts.tag].append(self._throughput(ts, n))
        return rates

    def _throughput(self, ts: TopicSet, round_: int) -> float:
        """Preload a backlog of new payments; a new processor works through it.
        Payments/s from the group's committed offsets."""
        self.rig.load(ts, "skip", self.opts.payments, 11 + round_)
        before = self.rig.committed_total(ts)
        proc = self.rig.spawn(ts, f"backlog{round_ + 1}")
        # Each posted payment is processed twice: its debit, then its credit leg.
        samples, done_at = self.rig.drain(
            ts, proc, "backlog", before, 2 * self.opts.payments, self._timeout()
        )
        proc.stop()
        rate = backlog_rate(samples, self.opts.payments, done_at)
        print(f"  {ts.tag}: {self.opts.payments:,} payments at {rate:,.0f}/s", flush=True)
        return rate

    def _settle(self, proc: Processor, timeout: float = 900.0) -> float:
        """Steady state: wait until the processor's stores have no compaction pending
        (a bulk restore leaves a debt that background compaction pays off, competing for
        the CPU meanwhile). Seconds waited."""
        started = said = time.monotonic()
        while time.monotonic() - started < timeout:
            proc.check("waiting for the stores' compaction")
            pending = compaction_pending_mb(proc.lines())
            if pending == 0:
                return time.monotonic() - started
            if time.monotonic() - said >= 10:
                said = time.monotonic()
                left = "unknown" if pending is None else f"{pending:,} MB"
                print(f"  stores compacting: {left} to go", flush=True)
            time.sleep(1)
        raise RunFailed(f"the stores still had compaction pending after {timeout:.0f}s")

    def _timeout(self) -> float:
        return 300 + self.opts.keys / 20_000 + self.opts.payments / 200

    def close(self) -> None:
        """Stop every processor and the probes, delete the topics and the state dirs."""
        self.rig.stop_all()
        if self.probes is not None:
            self.probes.close()
        self.rig.close()
