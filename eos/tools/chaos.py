"""`eos chaos`: the ledger under faults on a private 3-broker stack, then the verifier.

Starts its own stack (3 brokers and a registry, own run folder and ports), sets up a
private set of ledger topics, starts N `eos run ledger` processes and produces payments
at a bounded rate while a schedule of faults runs: processor SIGKILLs (restarted 2 s
later), processor SIGSTOPs longer than the session timeout, broker hard bounces, registry
restarts and registry blocks, one at a time, each once the group has recovered from the
one before. It watches for processor exits it did not cause, for processors that go
silent, for how long the group takes to get its lag back after a kill, and per kill for
the survivors' longest commit gap and the killed processor's partitions' takeover time
(eos/tools/chaos_gaps.py). At the end: caught up, processors stopped with SIGTERM, the
ledger verified, no transaction left hanging (LSO == high watermark everywhere), and a
table.

`--static-membership` runs the processors with EOS_STATIC_MEMBERSHIP (group.instance.id =
the instance id, stable per slot, so a processor restarted after its SIGKILL has the same
one): a restart within the session timeout then gets its partitions back with no
rebalance (unless it was the group's leader). Off by default: after a broker bounce that
moved the group coordinator, the group fenced static members (FENCED_INSTANCE_ID, fatal
to a librdkafka consumer), and the processors stopped.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

from eos.config import EngineSettings
from eos.errors import RunFailed
from eos.kafka.admin import metadata
from eos.kafka.clients import consumer_config, make_admin
from eos.kafka.offsets import TP, Offsets, lag, open_transactions, total
from eos.ledger.generator import LoadSpec, produce_payments
from eos.ledger.settings import LedgerSettings
from eos.ledger.setup import setup
from eos.ledger.verify import verify
from eos.stack.layout import StackLayout
from eos.stack.stack import Stack, StackSpec
from eos.tools.chaos_faults import FAULT_KINDS, Faults, FaultTiming, Pool, Timeline, schedule
from eos.tools.chaos_gaps import GAP_BAR, TAKEOVER_BAR, Kill, KillCost, Sampler, measure
from eos.tools.demo import settled_lag, step, wait_caught_up, work_lag

__all__ = ["ChaosOptions", "chaos"]

SILENCE_BAR = 60.0  # seconds a live processor may write no log line
RECOVERY_BAR = 20.0  # seconds for the group's lag to come back after a kill


@dataclass(frozen=True)
class ChaosOptions:
    payments: int = 1_000_000
    rate: int = 2_000
    processors: int = 3
    partitions: int = 6
    accounts: int = 300
    kills: int = 10
    pauses: int = 2
    pause_seconds: float = 15.0
    bounces: int = 3
    registry_restarts: int = 1
    registry_blocks: int = 1
    registry_block_seconds: float = 60.0
    kafka_port: int = 29192
    registry_port: int = 28081
    run_dir: Path | None = None
    keep: bool = False
    seed: int = 7
    # The seconds bars of a kill (lag back, takeover, survivor gap) fail the run; off,
    # they are reported only (a short run on a shared CI machine is about exactly-once
    # and surviving every fault, not about seconds).
    kill_bars: bool = True
    static_membership: bool = False  # see the module doc


@dataclass
class _Outcome:
    faults: dict[str, int] = field(default_factory=dict)
    fault_errors: list[str] = field(default_factory=list)
    unsettled: list[str] = field(default_factory=list)
    after_load: int = 0
    recoveries: list[float] = field(default_factory=list)
    costs: list[KillCost] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    silence: float = 0.0
    exit_codes: dict[str, int] = field(default_factory=dict)
    verified: bool = False
    hanging: list[TP] = field(default_factory=list)
    seconds: float = 0.0


def chaos(opts: ChaosOptions) -> int:
    """0 when every check held, else 1."""
    started = time.monotonic()
    run_dir = opts.run_dir or Path(tempfile.mkdtemp(prefix="eos-chaos-"))
    stack = Stack(StackLayout.create(None, run_dir), say=lambda s: print(f"  [stack] {s}"))
    spec = StackSpec(brokers=3, kafka_port=opts.kafka_port, registry_port=opts.registry_port)
    step(f"1/5 private 3-broker stack in {run_dir}")
    try:
        stack.up(spec)
        out = _run(opts, stack, spec, run_dir)
    finally:
        if opts.keep:
            print(f"  stack left running (--keep): eos stack --run-dir {run_dir} down")
        else:
            stack.down()
    out.seconds = time.monotonic() - started
    return _table(opts, out)


def _env(opts: ChaosOptions, spec: StackSpec, tag: str, run_dir: Path) -> dict[str, str]:
    return {
        **LedgerSettings.private_env(tag, spec.bootstrap_servers, str(spec.registry_url)),
        "EOS_TRANSACTION_TIMEOUT_MS": "15000",
        "EOS_SESSION_TIMEOUT_MS": "10000",
        "EOS_METRICS_PORT": "0",  # three processors share one host and its ports
        "EOS_STATIC_MEMBERSHIP": "true" if opts.static_membership else "false",
        "EOS_STATE_DIR": str(run_dir / "state"),
    }


def _run(opts: ChaosOptions, stack: Stack, spec: StackSpec, run_dir: Path) -> _Outcome:
    tag = f"chaos-{uuid.uuid4().hex[:6]}"
    os.environ.pop("EOS_INSTANCE_ID", None)
    os.environ.update(_env(opts, spec, tag, run_dir))
    engine, ledger = EngineSettings(), LedgerSettings()
    step(f"2/5 ledger topics ({tag}.*, {opts.partitions} partitions) and schemas")
    setup(engine, opts.partitions)
    logs = run_dir / "processors"
    logs.mkdir(parents=True, exist_ok=True)
    pool = Pool(logs, dict(os.environ))
    step(f"3/5 {opts.processors} processors (logs in {logs}); funding {opts.accounts} accounts")
    out = _Outcome()
    try:  # whatever fails from here, every processor started is stopped
        for i in range(opts.processors):
            pool.start(f"p{i + 1}")
        base = LoadSpec(opts.payments, accounts=opts.accounts, garbage=0.0005, seed=opts.seed)
        print(f"  {produce_payments(engine, ledger, replace(base, funding='only')).line()}")
        wait_caught_up(engine, ledger, pool.snapshot())
        timeline = Timeline()
        with Sampler(engine, ledger) as sampler:  # until caught up: the last kill's window
            kills = _load(opts, engine, ledger, pool, stack, spec, out, timeline, sampler)
            step("5/5 waiting until caught up; stopping the processors, verifying")
            _caught_up(engine, ledger, pool, timeline)
        out.recoveries = _recoveries(timeline, [k.at for k in kills], _slack(opts))
        out.costs = measure(sampler.samples(), kills)
        if sampler.skipped:
            print(f"  ({sampler.skipped} commit samples skipped)", flush=True)
    finally:
        out.exit_codes = pool.stop_all()
    out.unexpected += [f"{u.name} exited {u.code}" for u in pool.unexpected]
    out.silence = pool.longest_silence
    report = verify(spec.bootstrap_servers, str(spec.registry_url), ledger, engine.dlq_topic)
    print(report.render(), flush=True)
    out.verified = report.ok
    out.hanging = _hanging(engine, tag)
    return out


def _load(
    opts: ChaosOptions,
    engine: EngineSettings,
    ledger: LedgerSettings,
    pool: Pool,
    stack: Stack,
    spec: StackSpec,
    out: _Outcome,
    timeline: Timeline,
    sampler: Sampler,
) -> list[Kill]:
    """The payments in a background thread, the faults in another, the monitor here.
    Returns the kills."""
    duration = opts.payments / opts.rate
    counts = dict(
        zip(
            FAULT_KINDS,
            (opts.kills, opts.pauses, opts.bounces, opts.registry_restarts, opts.registry_blocks),
            strict=True,
        )
    )
    plan = schedule(counts, duration, opts.seed)
    step(
        f"4/5 {opts.payments:,} payments at {opts.rate:,}/s (~{duration:.0f}s); faults: "
        + ", ".join(f"{k} x{v}" for k, v in counts.items())
    )
    stop = threading.Event()
    timing = FaultTiming(opts.pause_seconds, opts.registry_block_seconds, _slack(opts))
    faults = Faults(pool, stack, spec, timing, opts.seed, sampler.steady)
    errors: list[BaseException] = []
    load_ended: list[float] = []

    def produce() -> None:
        try:
            produce_payments(engine, ledger, replace(base_spec, funding="skip"))
        except BaseException as exc:
            errors.append(exc)
        load_ended.append(time.monotonic())

    base_spec = LoadSpec(
        count=opts.payments, accounts=opts.accounts, garbage=0.0005, rate=opts.rate, seed=opts.seed
    )
    threads = [
        threading.Thread(target=produce, daemon=True),
        threading.Thread(target=faults.run, args=(plan, timeline, stop), daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        _monitor(opts, engine, ledger, pool, threads, timeline)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=300)
    if errors:
        raise errors[0]
    out.faults, out.fault_errors, out.unsettled = faults.done, faults.errors, faults.unsettled
    out.after_load = sum(1 for t in faults.started if load_ended and t > load_ended[0])
    return faults.kills


def _monitor(
    opts: ChaosOptions,
    engine: EngineSettings,
    ledger: LedgerSettings,
    pool: Pool,
    threads: list[threading.Thread],
    timeline: Timeline,
) -> None:
    """Samples the group's lag into `timeline` every 0.5 s while the threads run (and up
    to 25 s more, until caught up), checks the processors, prints progress."""
    with Offsets(consumer_config(engine)) as offsets:
        payments = offsets.partitions([ledger.payments_topic])
        both = offsets.partitions([ledger.payments_topic, ledger.credits_topic])
        start_in = total(offsets.high_watermarks(payments))
        start_done = total(offsets.committed(engine.group_id, payments))
        started = last_line = time.monotonic()
        until = float("inf")  # once the threads end: 25 s more, or until caught up
        while time.monotonic() < until:
            now = time.monotonic()
            if until == float("inf") and not any(t.is_alive() for t in threads):
                until = now + 25
            if timeline.latest() <= 4 * len(both) and until < float("inf"):
                break
            pool.check(now)
            try:
                committed = offsets.committed(engine.group_id, both)
                timeline.add(now, lag(committed, offsets.last_stable(both)))
                produced = total(offsets.high_watermarks(payments)) - start_in
                done = total({tp: committed.get(tp, 0) for tp in payments}) - start_done
            except Exception as exc:  # a bouncing broker: skip this sample
                print(f"  (lag sample skipped: {type(exc).__name__} {exc})", flush=True)
                time.sleep(0.5)
                continue
            if now - last_line >= 5:
                rate = done / (now - started)
                eta = (opts.payments - done) / rate if rate else float("inf")
                print(
                    f"  produced ~{produced:,}, committed {done:,} of {opts.payments:,} "
                    f"({rate:,.0f}/s, ETA {eta:,.0f}s), lag {timeline.latest():,}",
                    flush=True,
                )
                last_line = now
            time.sleep(0.5)


def _caught_up(
    engine: EngineSettings,
    ledger: LedgerSettings,
    pool: Pool,
    timeline: Timeline,
    timeout: float = 300,
) -> None:
    """Until the group's lag is at most a commit marker per partition and processor for
    3 s (the processors' last transactions can interleave on a partition: see
    eos.tools.demo.wait_caught_up; a partition whose lag holds no committed record has
    none, see work_lag); samples that fail (a settling cluster) are asked again,
    processors are checked meanwhile."""
    deadline = time.monotonic() + timeout
    config = consumer_config(engine)
    with Offsets(config) as offsets:
        both = offsets.partitions([ledger.payments_topic, ledger.credits_topic])
        since: float | None = None
        while time.monotonic() < deadline:
            pool.check(time.monotonic())
            try:
                behind = work_lag(offsets, config, engine.group_id, both)[0]
            except Exception as exc:
                print(f"  (lag sample failed: {type(exc).__name__} {exc})", flush=True)
                behind = -1
            if behind >= 0:
                timeline.add(time.monotonic(), behind)
            if 0 <= behind <= settled_lag(len(both), len(pool.snapshot())):
                since = since or time.monotonic()
                if time.monotonic() - since >= 3:
                    return
            else:
                since = None
            time.sleep(0.5)
    raise RunFailed("timed out waiting for the processors to catch up")


def _slack(opts: ChaosOptions) -> int:
    """Lag over a fault's pre-fault level that still counts as recovered: the records a
    quarter second of load brings, or a few commit markers per partition."""
    return max(opts.rate // 4, 4 * opts.partitions)


def _recoveries(timeline: Timeline, kills: list[float], slack: int) -> list[float]:
    """Per kill: seconds until the lag is back to its level before the kill (plus
    `slack`); infinity when it never was while sampled."""
    out = []
    for killed in kills:
        back = timeline.first_back(timeline.level_at(killed) + slack, killed + 0.5)
        out.append(back - killed if back is not None else float("inf"))
    return out


def _hanging(engine: EngineSettings, tag: str) -> list[TP]:
    """Partitions of the run's topics whose last stable offset is behind their high
    watermark: a transaction left open."""
    topics = [t for t in metadata(make_admin(engine)).topics if tag in t]
    with Offsets(consumer_config(engine)) as offsets:
        parts = offsets.partitions(sorted(topics))
        return open_transactions(offsets.last_stable(parts), offsets.high_watermarks(parts))


def _bar(opts: ChaosOptions, bar: float) -> str:
    return f"(bar {bar:.0f}s)" if opts.kill_bars else f"(bar {bar:.0f}s, reported only)"


def _table(opts: ChaosOptions, out: _Outcome) -> int:
    recovery = max(out.recoveries, default=0.0)
    gap = max((c.gap for c in out.costs), default=0.0)
    takeover = max((c.takeover for c in out.costs), default=0.0)
    rows = [(f"{k}s", f"{v} of {_asked(opts, k)}") for k, v in out.faults.items()]
    rows += [
        ("kill recovery (max)", f"{recovery:.1f}s {_bar(opts, RECOVERY_BAR)}"),
        ("kill recoveries", ", ".join(f"{r:.1f}s" for r in out.recoveries) or "-"),
        ("kill takeover (max)", f"{takeover:.1f}s {_bar(opts, TAKEOVER_BAR)}"),
        ("kill takeovers", ", ".join(f"{c.takeover:.1f}s ({c.name})" for c in out.costs) or "-"),
        ("survivor commit gap (max)", f"{gap:.1f}s {_bar(opts, GAP_BAR)}"),
        ("survivor commit gaps", ", ".join(_gap(c) for c in out.costs) or "-"),
        ("longest sample interval", f"{max((c.blind for c in out.costs), default=0.0):.1f}s"),
        ("faults after the load ended", str(out.after_load)),
        ("fault errors", "; ".join(out.fault_errors) or "none"),
        ("lag not back in 60s after", ", ".join(out.unsettled) or "none"),
        ("unexpected exits", "; ".join(out.unexpected) or "none"),
        ("exit codes at SIGTERM", str(out.exit_codes)),
        ("longest silence", f"{out.silence:.1f}s (bar {SILENCE_BAR:.0f}s)"),
        ("verification", "PASSED" if out.verified else "FAILED"),
        ("LSO == HW everywhere", "yes" if not out.hanging else f"no: {out.hanging}"),
        ("payments", f"{opts.payments:,} at {opts.rate:,}/s"),
        ("duration", f"{out.seconds:.0f}s"),
    ]
    ok = (
        out.verified
        and not out.hanging
        and not out.unexpected
        and not out.fault_errors
        and not out.unsettled
        and (
            not opts.kill_bars
            or max(recovery / RECOVERY_BAR, takeover / TAKEOVER_BAR, gap / GAP_BAR) <= 1
        )
        and out.silence <= SILENCE_BAR
        and all(code == 0 for code in out.exit_codes.values())
    )
    rows.append(("result", "ALL HELD" if ok else "FAILED"))
    width = max(len(k) for k, _ in rows)
    print("\n" + "\n".join(f"  {k:<{width}}  {v}" for k, v in rows), flush=True)
    print(f"\nverification {'PASSED' if out.verified else 'FAILED'}", flush=True)
    return 0 if ok else 1


def _gap(cost: KillCost) -> str:
    return f"{cost.gap:.1f}s" + (f" ({cost.survivor})" if cost.survivor else "")


def _asked(opts: ChaosOptions, kind: str) -> int:
    return {
        "kill": opts.kills,
        "pause": opts.pauses,
        "bounce": opts.bounces,
        "registry-restart": opts.registry_restarts,
        "registry-block": opts.registry_blocks,
    }[kind]
