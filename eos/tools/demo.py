"""`eos demo`: the ledger end to end, with a crash in the middle, then the verifier.

Creates a fresh set of topics, starts two `eos run ledger` processes, produces payments
(with duplicates, invalid ones and undecodable bytes), SIGKILLs one processor midway and
restarts it, waits until everything is processed, verifies, and prints a summary.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from eos.config import DEFAULT_METRICS_PORT, EngineSettings
from eos.errors import RunFailed
from eos.kafka.clients import consumer_config
from eos.kafka.lag import work_behind
from eos.kafka.offsets import TP, Offsets, total
from eos.ledger.generator import LoadReport, LoadSpec, produce_payments
from eos.ledger.settings import LedgerSettings
from eos.ledger.setup import setup
from eos.ledger.verify import Report, verify
from eos.stack.cluster import provide_cluster
from eos.tools.commands import eos_command

__all__ = [
    "DemoOptions",
    "demo",
    "kill_and_restart",
    "run_demo",
    "wait_caught_up",
    "work_lag",
]

Processes = dict[str, subprocess.Popen[bytes]]


@dataclass(frozen=True)
class DemoOptions:
    payments: int = 100_000
    partitions: int = 6
    accounts: int = 300
    no_crash: bool = False  # skip the SIGKILL and restart (steady-state throughput)


@dataclass
class _Load:
    """What the load phase produced and how long processing took."""

    funding: LoadReport
    payments: LoadReport
    elapsed: float
    exit_codes: dict[str, int]


def demo(opts: DemoOptions) -> int:
    """The demo on the cluster `provide_cluster` finds: 0 when the ledger verifies and
    both processors stopped cleanly, else 1. RunFailed when it cannot complete."""
    with provide_cluster() as cluster:
        return run_demo(cluster.bootstrap_servers, cluster.schema_registry_url, opts)


def run_demo(bootstrap: str, registry_url: str, opts: DemoOptions) -> int:
    tag = f"demo-{uuid.uuid4().hex[:6]}"
    os.environ.update(
        {
            "EOS_BOOTSTRAP_SERVERS": bootstrap,
            "EOS_SCHEMA_REGISTRY_URL": registry_url,
            "EOS_GROUP_ID": f"{tag}-ledger",
            "EOS_DLQ_TOPIC": f"{tag}.dlq",
            "EOS_TRANSACTIONAL_ID_PREFIX": tag,
            "EOS_TRANSACTION_TIMEOUT_MS": "15000",
            "EOS_SESSION_TIMEOUT_MS": "10000",
            **LedgerSettings.with_prefix(tag).topic_env(),
        }
    )
    engine = EngineSettings()
    ledger = LedgerSettings()
    step(f"1/6 topics and schemas ({tag}.*, {opts.partitions} partitions)")
    setup(engine, opts.partitions, 1)

    step("2/6 starting two ledger processors")
    logs = Path(tempfile.mkdtemp(prefix=f"eos-{tag}-"))
    procs = {name: start_processor(name, logs) for name in ("a", "b")}
    for name in procs:
        if metrics_port(name):
            print(f"  processor {name}: http://127.0.0.1:{metrics_port(name)}/metrics", flush=True)
    stop = threading.Event()
    try:
        load = _load(engine, ledger, procs, logs, opts, stop)
    finally:
        stop.set()
        _kill_all(procs)

    step("5/6 verifying the ledger (read_committed)")
    report = verify(bootstrap, registry_url, ledger, engine.dlq_topic)
    print(report.render(), flush=True)

    step("6/6 summary")
    _summary(opts, load, report)
    print(f"  processor logs: {logs}", flush=True)
    return 0 if report.ok and all(c == 0 for c in load.exit_codes.values()) else 1


def _load(
    engine: EngineSettings,
    ledger: LedgerSettings,
    procs: Processes,
    logs: Path,
    opts: DemoOptions,
    stop: threading.Event,
) -> _Load:
    """Steps 3 and 4: fund the accounts, then the payments (and the crash); waits until
    everything is processed and stops the processors."""
    step(f"3/6 funding {opts.accounts} accounts in 3 currencies from external accounts")
    base = LoadSpec(
        count=opts.payments,
        accounts=opts.accounts,
        duplicates=0.02,
        invalid=0.03,
        garbage=0.0005,
        seed=7,
    )
    funding = produce_payments(engine, ledger, replace(base, funding="only"))
    print(f"  {funding.line()}", flush=True)
    wait_caught_up(engine, ledger, procs)

    if opts.no_crash:
        step(f"4/6 {opts.payments:,} payments (no crash)")
    else:
        step(
            f"4/6 {opts.payments:,} payments; processor a is killed (SIGKILL) at about 40% "
            "and restarted"
        )
    started = time.monotonic()
    killer = threading.Thread(
        target=kill_and_restart,
        args=(procs, logs, engine, ledger, opts.payments, stop),
        daemon=True,
    )
    if not opts.no_crash:
        killer.start()
    try:
        payments = produce_payments(engine, ledger, replace(base, funding="skip"))
    except BaseException:
        stop.set()  # the killer gives up rather than kill or restart anything
        raise
    finally:
        if killer.is_alive():
            killer.join()
    print(f"  {payments.line()}", flush=True)
    elapsed = wait_caught_up(engine, ledger, procs) - started
    for proc in procs.values():
        proc.send_signal(signal.SIGTERM)
    codes = {name: proc.wait(60) for name, proc in procs.items()}
    print(f"  all processed; processors stopped: exit codes {codes}", flush=True)
    return _Load(funding, payments, elapsed, codes)


def _kill_all(procs: Processes) -> None:
    """Whatever is still running (the demo failed or a processor hung): SIGKILL."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _summary(opts: DemoOptions, load: _Load, report: Report) -> None:
    crash = "no crash" if opts.no_crash else "one crash and restart"
    kinds = load.payments.kinds
    rows: list[tuple[str, Any]] = [
        ("funding payments", f"{load.funding.kinds['funding']:,}"),
        ("payments produced", f"{opts.payments:,}"),
        ("  of which duplicates sent", f"{kinds['duplicate']:,}"),
        ("  invalid sent", f"{kinds['invalid']:,}"),
        ("  undecodable sent", f"{kinds['undecodable']:,}"),
        ("posted", f"{report.posted:,}"),
        ("rejected", f"{report.rejected:,}"),
        ("duplicates dropped", f"{report.duplicates:,}"),
        ("dead-lettered", f"{report.dead_lettered:,}"),
        ("processor crashes (SIGKILL)", "0" if opts.no_crash else "1 (restarted)"),
        (
            "throughput",
            f"{opts.payments / load.elapsed:,.0f} payments/s "
            f"({opts.payments:,} produced and processed in {load.elapsed:.1f}s, 2 instances, "
            f"{crash})",
        ),
        ("verification", "PASSED" if report.ok else f"FAILED ({len(report.violations)})"),
    ]
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"  {k:<{width}}  {v}" for k, v in rows), flush=True)


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def metrics_port(name: str) -> int:
    """Processor a serves /metrics on EOS_METRICS_PORT (default DEFAULT_METRICS_PORT),
    b on the next; 0: none."""
    base = int(os.environ.get("EOS_METRICS_PORT") or DEFAULT_METRICS_PORT)
    return base + "abcdefgh".index(name) if base else 0


def start_processor(name: str, logs: Path) -> subprocess.Popen[bytes]:
    log = open(logs / f"processor-{name}.log", "ab")  # noqa: SIM115
    return subprocess.Popen(
        eos_command("run", "ledger", "--instance-id", f"demo-{name}", "--startup-wait", "true"),
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "EOS_METRICS_PORT": str(metrics_port(name))},
    )


def kill_and_restart(
    procs: Processes,
    logs: Path,
    engine: EngineSettings,
    ledger: LedgerSettings,
    payments: int,
    stop: threading.Event | None = None,
) -> None:
    """SIGKILL processor a once the group has committed about 40% of the payments, then
    restart it; gives up without killing when `stop` is set."""
    stop = stop or threading.Event()
    with Offsets(consumer_config(engine)) as offsets:
        partitions = offsets.partitions([ledger.payments_topic])
        start = total(offsets.committed(engine.group_id, partitions))
        done = 0
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and done < 0.4 * payments:
            if stop.wait(0.2):
                return
            done = total(offsets.committed(engine.group_id, partitions)) - start
    procs["a"].kill()
    procs["a"].wait()
    print(
        f"  processor a killed with SIGKILL after {done:,} payments were committed; "
        "restarting it in 3 s",
        flush=True,
    )
    if stop.wait(3):
        return
    procs["a"] = start_processor("a", logs)
    print("  processor a restarted (its transactional.id fences the dead one)", flush=True)


def wait_caught_up(
    engine: EngineSettings,
    ledger: LedgerSettings,
    procs: Processes,
    timeout: float = 600,
) -> float:
    """Waits until the group's committed offsets reach the ends; returns when they first did.

    RunFailed when a processor exits meanwhile or `timeout` passes first."""
    config = consumer_config(engine)
    with Offsets(config) as offsets:
        partitions = offsets.partitions([ledger.payments_topic, ledger.credits_topic])
        deadline = time.monotonic() + timeout
        last_line = 0.0
        zero_since: float | None = None
        last_snapshot: list[tuple[int, int]] = []
        while time.monotonic() < deadline:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    raise RunFailed(f"processor {name} exited with {proc.returncode}")
            behind, snapshot = work_lag(offsets, config, engine.group_id, partitions)
            # Each committed transaction leaves a marker after its records, and the last
            # transactions of several processors can interleave on one partition (records
            # A, B, then markers A, B): a settled partition may show a lag of one marker
            # per processor. Settled means nothing moved for 3 s, too.
            markers = settled_lag(len(partitions), len(procs))
            if behind <= markers and snapshot == last_snapshot:
                zero_since = zero_since or time.monotonic()
                if time.monotonic() - zero_since > 3:
                    return zero_since
            else:
                zero_since = None
            last_snapshot = snapshot
            if time.monotonic() - last_line > 2:
                if behind <= markers:
                    print(f"  lag {behind:,}: commit markers at most", flush=True)
                else:
                    print(f"  lag {behind:,} records", flush=True)
                last_line = time.monotonic()
            time.sleep(0.5)
    raise RunFailed("timed out waiting for the processors to catch up")


def settled_lag(partitions: int, processors: int) -> int:
    """The most lag a settled group can show: a trailing commit marker per partition
    and processor (their last transactions can interleave on one partition)."""
    return partitions * max(1, processors)


def work_lag(
    offsets: Offsets, config: dict[str, Any], group: str, partitions: list[TP]
) -> tuple[int, list[tuple[int, int]]]:
    """The group's lag still to process, summed (eos.kafka.lag.work_behind), and each
    partition's (committed, end) pair."""
    behind, snapshot = work_behind(offsets, config, group, partitions)
    return sum(behind.values()), snapshot
