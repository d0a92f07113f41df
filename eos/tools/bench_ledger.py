"""`eos bench ledger`: payments/s of `eos run ledger`, one process against N.

Each run gets a private ledger of its own (topics under a unique prefix) and starts `eos
run ledger --processes n` on it. Its accounts are funded and that funding processed first,
so every payment of the backlog can post, and the workers' group is left to settle; then
a backlog of payments is produced and the workers work through it.
The clock runs from the last moment the group had committed nothing of the backlog to
the moment both the payments and the credit legs they caused are committed: process
start-up is not counted, every payment's two postings are. Runs alternate between the
process counts over `rounds` rounds, so a slow spell of the shared machine does not land
on one count only; the median counts.
"""

from __future__ import annotations

import json
import os
import statistics
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.schema_registry.error import SchemaRegistryError

from eos.errors import RunFailed
from eos.stack.cluster import provide_cluster
from eos.tools.bench_state_report import backlog_rate
from eos.tools.ledger_rig import LedgerRig

__all__ = ["LedgerBenchOptions", "bars", "bench_ledger", "summarize"]

PAYMENTS_BAR = 30_000  # payments/s in one process
GAIN_BAR = 0.40  # what N processes add over one


@dataclass(frozen=True)
class LedgerBenchOptions:
    payments: int = 100_000
    partitions: int = 6
    accounts: int = 1000
    processes: int = os.cpu_count() or 1
    rounds: int = 3
    run_dir: Path | None = None  # default: bench-results/ledger-<tag>/
    out: Path = Path("bench-results/ledger.json")


def bench_ledger(opts: LedgerBenchOptions) -> list[dict[str, Any]]:
    """The bench on the cluster `provide_cluster` finds; one row per process count (also
    written to `opts.out`). RunFailed when a run does not finish."""
    if opts.payments < 1 or opts.partitions < 1 or opts.processes < 1 or opts.rounds < 1:
        raise RunFailed("--payments, --partitions, --processes and --rounds must be at least 1")
    with provide_cluster() as cluster:
        print(f"cluster: {cluster.bootstrap_servers} ({cluster.source})", flush=True)
        tag = f"bledger-{uuid.uuid4().hex[:6]}"
        run_dir = opts.run_dir or opts.out.parent / f"ledger-{tag}"
        run_dir.mkdir(parents=True, exist_ok=True)
        rig = LedgerRig(
            cluster.bootstrap_servers,
            cluster.schema_registry_url,
            run_dir,
            opts.partitions,
            opts.accounts,
            # Dynamic members leave the group when they stop: the funding processor's
            # membership must not hold partitions the backlog's workers wait for.
            static_membership=False,
        )
        try:
            rates = _rounds(rig, tag, opts)
        except (KafkaException, SchemaRegistryError, OSError) as exc:
            raise RunFailed(f"{type(exc).__name__}: {exc}") from exc
        finally:
            rig.close()
    rows = [summarize(n, opts.payments, runs) for n, runs in rates.items()]
    report(rows, opts, run_dir)
    return rows


def _counts(processes: int) -> list[int]:
    return [1] if processes == 1 else [1, processes]


def _rounds(rig: LedgerRig, tag: str, opts: LedgerBenchOptions) -> dict[int, list[float]]:
    counts = _counts(opts.processes)
    rates: dict[int, list[float]] = {n: [] for n in counts}
    for r in range(opts.rounds):
        for n in counts if r % 2 == 0 else list(reversed(counts)):
            name = f"{tag}-r{r + 1}p{n}"
            print(f"\n== round {r + 1}/{opts.rounds}: {n} process(es), on {name}.*", flush=True)
            rates[n].append(_run(rig, name, n, r, opts))
    return rates


def _run(rig: LedgerRig, tag: str, processes: int, round_: int, opts: LedgerBenchOptions) -> float:
    """One private ledger, funded by the run's own workers; once their group is stable, a
    backlog of payments they work through."""
    ts = rig.topic_set(tag)
    timeout = 300 + opts.payments / 200
    try:
        rig.create(ts)
        proc = rig.spawn(ts, f"p{processes}", ["--processes", str(processes)])
        rig.load(ts, "only", 0, 11)
        rig.drain(ts, proc, "funding", rig.committed_total(ts), None, timeout)
        rig.wait_members(ts, proc, processes, timeout)
        before, loading = rig.committed_total(ts), time.monotonic()
        rig.load(ts, "skip", opts.payments, 11 + round_)
        # Each payment is processed twice: its debit, then its credit leg.
        samples, done_at = rig.drain(ts, proc, "backlog", before, 2 * opts.payments, timeout)
        # The workers start on the first payments while the rest are produced: the clock
        # starts at the load when the first sample already shows progress.
        samples.insert(0, (loading, 0))
        code = proc.stop()
        if code != 0:
            raise RunFailed(f"processor {proc.name} exited with {code} (log {proc.log})")
        rate = backlog_rate(samples, opts.payments, done_at)
        print(f"  {processes} process(es): {opts.payments:,} payments at {rate:,.0f}/s", flush=True)
        return rate
    finally:
        rig.stop_all()
        rig.discard(ts)


def summarize(processes: int, payments: int, rates: list[float]) -> dict[str, Any]:
    """One row of ledger.json: the median run of a process count, and the spread."""
    median = statistics.median(rates)
    return {
        "processes": processes,
        "payments": payments,
        "seconds": round(payments / median, 3),
        "payments_per_s": round(median, 1),
        "payments_per_s_min": min(rates),
        "payments_per_s_max": max(rates),
        "rounds": len(rates),
        "cpus": os.cpu_count(),
    }


def bars(rows: list[dict[str, Any]]) -> list[str]:
    """The ledger's performance bars, each with its figure."""
    by_count = {r["processes"]: r for r in rows}
    one = by_count[1]["payments_per_s"]
    met = "met" if one >= PAYMENTS_BAR else "NOT met"
    out = [f"1 process (bar >= {PAYMENTS_BAR:,} payments/s): {one:,.0f} ({met})"]
    for n, row in sorted(by_count.items()):
        if n > 1:
            gain = round(row["payments_per_s"] / one - 1, 6)  # 1.4 - 1 is 0.3999...
            met = "met" if gain >= GAIN_BAR else "NOT met"
            out.append(f"{n} processes over 1 (bar >= +{GAIN_BAR:.0%}): {gain:+.1%} ({met})")
    return out


def report(rows: list[dict[str, Any]], opts: LedgerBenchOptions, run_dir: Path) -> None:
    print(f"\n{'processes':>9} {'payments/s':>11} {'min':>9} {'max':>9} {'seconds':>8}")
    for r in rows:
        print(
            f"{r['processes']:>9} {r['payments_per_s']:>11,.0f} {r['payments_per_s_min']:>9,.0f}"
            f" {r['payments_per_s_max']:>9,.0f} {r['seconds']:>8.2f}"
        )
    for line in bars(rows):
        print(line)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"written to {opts.out}; processor logs in {run_dir}", flush=True)
