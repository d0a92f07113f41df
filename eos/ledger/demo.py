"""`make demo`: the ledger end to end, with a crash in the middle, then the verifier.

Creates a fresh set of topics, starts two `eos run ledger` processes, produces payments
(with duplicates, invalid ones and undecodable bytes), SIGKILLs one processor midway and
restarts it, waits until everything is processed, verifies, and prints a summary.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from eos.config import EngineSettings
from eos.ledger.generator import LoadSpec, produce_payments
from eos.ledger.settings import LedgerSettings
from eos.ledger.setup import setup
from eos.ledger.verify import verify
from eos.testing.cluster import provide_cluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eos-demo", description=__doc__)
    parser.add_argument("--payments", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--accounts", type=int, default=300)
    parser.add_argument(
        "--no-crash",
        action="store_true",
        help="skip the SIGKILL and restart, to measure steady-state throughput",
    )
    args = parser.parse_args(argv)
    with provide_cluster() as cluster:
        return run_demo(cluster.bootstrap_servers, cluster.schema_registry_url, args)


def run_demo(bootstrap: str, registry_url: str, args: argparse.Namespace) -> int:
    tag = f"demo-{uuid.uuid4().hex[:6]}"
    env = {
        "EOS_BOOTSTRAP_SERVERS": bootstrap,
        "EOS_SCHEMA_REGISTRY_URL": registry_url,
        "EOS_GROUP_ID": f"{tag}-ledger",
        "EOS_DLQ_TOPIC": f"{tag}.dlq",
        "EOS_TRANSACTIONAL_ID_PREFIX": tag,
        "EOS_TRANSACTION_TIMEOUT_MS": "15000",
        "EOS_SESSION_TIMEOUT_MS": "10000",
        **LedgerSettings.with_prefix(tag).topic_env(),
    }
    os.environ.update(env)
    engine = EngineSettings()
    ledger = LedgerSettings()
    step(f"1/6 topics and schemas ({tag}.*, {args.partitions} partitions)")
    setup(engine, args.partitions, 1)

    step("2/6 starting two ledger processors")
    logs = Path(tempfile.mkdtemp(prefix=f"eos-{tag}-"))
    procs = {name: start_processor(name, logs) for name in ("a", "b")}

    step(f"3/6 funding {args.accounts} accounts in 3 currencies from external accounts")
    base = LoadSpec(
        count=args.payments,
        accounts=args.accounts,
        duplicates=0.02,
        invalid=0.03,
        garbage=0.0005,
        seed=7,
    )
    funding = produce_payments(engine, ledger, replace(base, funding="only"))
    print(f"  {funding.line()}", flush=True)
    wait_caught_up(engine, ledger, procs)

    crash = "no crash" if args.no_crash else "one crash and restart"
    if args.no_crash:
        step(f"4/6 {args.payments:,} payments (no crash)")
    else:
        step(
            f"4/6 {args.payments:,} payments; processor a is killed (SIGKILL) at about 40% "
            "and restarted"
        )
    started = time.monotonic()
    killer = threading.Thread(
        target=kill_and_restart, args=(procs, logs, engine, ledger, args.payments), daemon=True
    )
    if not args.no_crash:
        killer.start()
    load = produce_payments(engine, ledger, replace(base, funding="skip"))
    print(f"  {load.line()}", flush=True)
    if not args.no_crash:
        killer.join()
    elapsed = wait_caught_up(engine, ledger, procs) - started
    for proc in procs.values():
        proc.send_signal(signal.SIGTERM)
    codes = {name: proc.wait(60) for name, proc in procs.items()}
    print(f"  all processed; processors stopped: exit codes {codes}", flush=True)

    step("5/6 verifying the ledger (read_committed)")
    report = verify(bootstrap, registry_url, ledger, engine.dlq_topic)
    print(report.render(), flush=True)

    step("6/6 summary")
    rows: list[tuple[str, Any]] = [
        ("funding payments", f"{funding.kinds['funding']:,}"),
        ("payments produced", f"{args.payments:,}"),
        ("  of which duplicates sent", f"{load.kinds['duplicate']:,}"),
        ("  invalid sent", f"{load.kinds['invalid']:,}"),
        ("  undecodable sent", f"{load.kinds['undecodable']:,}"),
        ("posted", f"{report.posted:,}"),
        ("rejected", f"{report.rejected:,}"),
        ("duplicates dropped", f"{report.duplicates:,}"),
        ("dead-lettered", f"{report.dead_lettered:,}"),
        ("processor crashes (SIGKILL)", "0" if args.no_crash else "1 (restarted)"),
        (
            "throughput",
            f"{args.payments / elapsed:,.0f} payments/s "
            f"({args.payments:,} produced and processed in {elapsed:.1f}s, 2 instances, "
            f"{crash})",
        ),
        ("verification", "PASSED" if report.ok else f"FAILED ({len(report.violations)})"),
    ]
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"  {k:<{width}}  {v}" for k, v in rows), flush=True)
    print(f"  processor logs: {logs}", flush=True)
    return 0 if report.ok and all(c == 0 for c in codes.values()) else 1


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def start_processor(name: str, logs: Path) -> subprocess.Popen[bytes]:
    log = open(logs / f"processor-{name}.log", "ab")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", "eos", "run", "ledger", "--instance-id", f"demo-{name}"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def kill_and_restart(
    procs: dict[str, subprocess.Popen[bytes]],
    logs: Path,
    engine: EngineSettings,
    ledger: LedgerSettings,
    total: int,
) -> None:
    """SIGKILL processor a once the group has committed about 40% of the payments."""
    consumer = Consumer(
        {"bootstrap.servers": engine.bootstrap_servers, "group.id": engine.group_id}
    )
    topic = ledger.payments_topic
    tps = [
        TopicPartition(topic, p)
        for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions
    ]
    start = sum(max(tp.offset, 0) for tp in consumer.committed(tps, timeout=10))
    done = 0
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and done < 0.4 * total:
        time.sleep(0.2)
        done = sum(max(tp.offset, 0) for tp in consumer.committed(tps, timeout=10)) - start
    consumer.close()
    procs["a"].kill()
    procs["a"].wait()
    print(
        f"  processor a killed with SIGKILL after {done:,} payments were committed; "
        "restarting it in 3 s",
        flush=True,
    )
    time.sleep(3)
    procs["a"] = start_processor("a", logs)
    print("  processor a restarted (its transactional.id fences the dead one)", flush=True)


def wait_caught_up(
    engine: EngineSettings,
    ledger: LedgerSettings,
    procs: dict[str, subprocess.Popen[bytes]],
    timeout: float = 600,
) -> float:
    """Waits until the group's committed offsets reach the ends; returns when they first did."""
    consumer = Consumer(
        {
            "bootstrap.servers": engine.bootstrap_servers,
            "group.id": engine.group_id,
            "isolation.level": "read_committed",
        }
    )
    topics = [ledger.payments_topic, ledger.credits_topic]
    tps = [
        TopicPartition(t, p)
        for t in topics
        for p in consumer.list_topics(t, timeout=10).topics[t].partitions
    ]
    deadline = time.monotonic() + timeout
    last_line = 0.0
    zero_since: float | None = None
    last_snapshot: list[tuple[int, int]] = []
    try:
        while time.monotonic() < deadline:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    raise SystemExit(f"processor {name} exited with {proc.returncode}")
            lag = 0
            snapshot = []
            for tp in consumer.committed(tps, timeout=10):
                _low, high = consumer.get_watermark_offsets(tp, timeout=10)
                lag += max(high - max(tp.offset, 0), 0)
                snapshot.append((tp.offset, high))
            # Each committed transaction leaves a marker after its records, so a settled
            # partition may show a lag of one; settled means nothing moved for 3 s, too.
            if lag <= len(tps) and snapshot == last_snapshot:
                zero_since = zero_since or time.monotonic()
                if time.monotonic() - zero_since > 3:
                    return zero_since
            else:
                zero_since = None
            last_snapshot = snapshot
            if time.monotonic() - last_line > 2:
                if lag <= len(tps):
                    print(f"  lag {lag:,}: at most one commit marker per partition", flush=True)
                else:
                    print(f"  lag {lag:,} records", flush=True)
                last_line = time.monotonic()
            time.sleep(0.5)
    finally:
        consumer.close()
    raise SystemExit("timed out waiting for the processors to catch up")


if __name__ == "__main__":
    sys.exit(main())
