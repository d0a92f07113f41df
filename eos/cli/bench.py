"""`eos bench`, `eos demo` and `eos chaos`: the tools in eos.tools. Bench and demo run on
the cluster EOS_BOOTSTRAP_SERVERS and EOS_SCHEMA_REGISTRY_URL name, else on the local
stack (started when not running); chaos starts a private stack of its own."""

from __future__ import annotations

from pathlib import Path

import click

from eos.cli.common import CONTEXT_SETTINGS, SuggestingGroup, exit_with, fail
from eos.errors import EosError

# Here, not from eos.tools.bench: `eos --help` must not import the clients.
MODES = ("exactly_once", "at_least_once", "copy", "ceiling")

__all__ = ["bench", "bench_ledger", "bench_state", "chaos", "demo"]


@click.group(
    "bench", cls=SuggestingGroup, context_settings=CONTEXT_SETTINGS, invoke_without_command=True
)
@click.option("--records", type=int, default=200_000, show_default=True)
@click.option("--partitions", type=int, default=6, show_default=True)
@click.option("--rounds", type=click.IntRange(1), default=3, show_default=True)
@click.option(
    "--modes",
    default=",".join(MODES),
    show_default=True,
    help="Comma-separated, of: " + ", ".join(MODES) + ".",
)
@click.option("--latency-rate", type=int, default=5_000, show_default=True, help="Events/s.")
@click.option("--latency-seconds", type=float, default=10.0, show_default=True)
@click.option(
    "--latency-warmup",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="Seconds streamed before the measured ones, not counted (start-up costs).",
)
@click.option(
    "--batch-max-records",
    type=int,
    default=None,
    help="For the processors (EOS_BATCH_MAX_RECORDS).",
)
@click.option(
    "--batch-max-ms", type=int, default=None, help="For the processors (EOS_BATCH_MAX_MS)."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("bench-results/latest.json"),
    show_default=True,
)
@click.pass_context
def bench(
    ctx: click.Context,
    records: int,
    partitions: int,
    rounds: int,
    modes: str,
    latency_rate: int,
    latency_seconds: float,
    latency_warmup: float,
    batch_max_records: int | None,
    batch_max_ms: int | None,
    out: Path,
) -> None:
    """The engine against the client's own loop, on the same broker and input.

    Modes, interleaved over --rounds rounds on one preloaded input: exactly_once and
    at_least_once (the events app), copy (raw bytes through, exactly once) and ceiling
    (a minimal confluent-kafka transactional loop). Then end-to-end latency (p50, p99)
    of a steady stream for the two events modes. Prints the medians and their spread and
    writes them as JSON. `eos bench ledger` benches the ledger's payments/s, `eos bench
    state` its state stores.
    """
    if ctx.invoked_subcommand is not None:
        return  # `eos bench state` or `ledger`: its own options, its own run
    from eos.tools.bench import BenchOptions
    from eos.tools.bench import bench as run_bench

    chosen = [m.strip() for m in modes.split(",") if m.strip()]
    unknown = sorted(set(chosen) - set(MODES))
    if unknown or not chosen:
        fail(f"eos bench: unknown mode(s) {', '.join(unknown) or '(none given)'}; "
             f"choose from {', '.join(MODES)}", 2)  # fmt: skip
    opts = BenchOptions(
        records=records,
        partitions=partitions,
        rounds=rounds,
        modes=tuple(chosen),
        latency_rate=latency_rate,
        latency_seconds=latency_seconds,
        latency_warmup_seconds=latency_warmup,
        batch_max_records=batch_max_records,
        batch_max_ms=batch_max_ms,
        out=out,
    )
    try:
        run_bench(opts)
    except EosError as exc:
        fail(f"eos bench: {exc}", 1)


@bench.command("state", context_settings=CONTEXT_SETTINGS)
@click.option(
    "--keys",
    type=int,
    default=10_000_000,
    show_default=True,
    help="Payment ids put in the dedup store (through its changelog) before the restores.",
)
@click.option("--partitions", type=int, default=6, show_default=True)
@click.option(
    "--payments",
    type=int,
    default=200_000,
    show_default=True,
    help="The backlog of each throughput run (keys present, then an empty store).",
)
@click.option(
    "--rounds",
    type=click.IntRange(1, 10),
    default=2,
    show_default=True,
    help="Throughput runs per store, the stores taking turns; the best of each counts.",
)
@click.option("--accounts", type=int, default=200, show_default=True)
@click.option(
    "--dynamic-membership",
    is_flag=True,
    help="Processors join as dynamic members (EOS_STATIC_MEMBERSHIP=false): a SIGKILLed "
    "one's restart then also waits for the group's session timeout.",
)
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Processor logs and state dirs (default: bench-results/state-<tag>/).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("bench-results/state.json"),
    show_default=True,
)
@click.option("--check", is_flag=True, help="Exit 1 when a figure misses its bar.")
def bench_state(
    keys: int,
    partitions: int,
    payments: int,
    rounds: int,
    accounts: int,
    dynamic_membership: bool,
    run_dir: Path | None,
    out: Path,
    check: bool,
) -> None:
    """The ledger's state stores at scale: restore, restarts, throughput, memory.

    Fills the dedup changelog of a private ledger with KEYS decisions, then spawns `eos
    run ledger` to time a full restore, a restart after SIGTERM and after SIGKILL, and
    payments/s with the keys present and with an empty store; records the processors'
    peak RSS. Prints the figures against their bars and writes them as JSON. Exit 0
    unless the bench itself failed (or, with --check, a bar was missed).
    """
    from eos.tools.bench_state import StateBenchOptions
    from eos.tools.bench_state import bench_state as run_bench_state

    opts = StateBenchOptions(
        keys=keys,
        partitions=partitions,
        payments=payments,
        rounds=rounds,
        accounts=accounts,
        static_membership=not dynamic_membership,
        run_dir=run_dir,
        out=out,
    )
    try:
        result = run_bench_state(opts)
    except EosError as exc:
        fail(f"eos bench state: {exc}", 1)
    missed = [name for name, bar in result["bars"].items() if bar["met"] is False]
    if check and missed:
        fail(f"eos bench state: bars missed: {', '.join(missed)}", 1)


@bench.command("ledger", context_settings=CONTEXT_SETTINGS)
@click.option("--payments", type=click.IntRange(1), default=100_000, show_default=True)
@click.option("--partitions", type=click.IntRange(1), default=6, show_default=True)
@click.option("--accounts", type=click.IntRange(2), default=1000, show_default=True)
@click.option(
    "--processes",
    type=click.IntRange(1, 64),
    default=None,
    help="Worker processes of the run set against one process [default: the cores].",
)
@click.option("--rounds", type=click.IntRange(1, 10), default=3, show_default=True)
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Processor logs and state dirs (default: bench-results/ledger-<tag>/).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("bench-results/ledger.json"),
    show_default=True,
)
def bench_ledger(
    payments: int,
    partitions: int,
    accounts: int,
    processes: int | None,
    rounds: int,
    run_dir: Path | None,
    out: Path,
) -> None:
    """Payments/s of `eos run ledger`: one process, then --processes N.

    Each run funds a private ledger, preloads PAYMENTS payments and times `eos run ledger
    --processes n` through them (debits and credit legs, from the group's committed
    offsets; start-up not counted). The counts take turns over --rounds rounds; prints
    the medians against their bars and writes one row per count as JSON.
    """
    import os

    from eos.tools.bench_ledger import LedgerBenchOptions
    from eos.tools.bench_ledger import bench_ledger as run_bench_ledger

    opts = LedgerBenchOptions(
        payments=payments,
        partitions=partitions,
        accounts=accounts,
        processes=processes or os.cpu_count() or 1,
        rounds=rounds,
        run_dir=run_dir,
        out=out,
    )
    try:
        run_bench_ledger(opts)
    except EosError as exc:
        fail(f"eos bench ledger: {exc}", 1)


@click.command("demo", context_settings=CONTEXT_SETTINGS)
@click.option("--payments", type=int, default=100_000, show_default=True)
@click.option("--partitions", type=int, default=6, show_default=True)
@click.option("--accounts", type=int, default=300, show_default=True)
@click.option(
    "--no-crash",
    is_flag=True,
    help="Skip the SIGKILL and restart, to measure steady-state throughput.",
)
def demo(payments: int, partitions: int, accounts: int, no_crash: bool) -> None:
    """The ledger end to end, with a crash in the middle, then the verifier.

    Creates a fresh set of topics, starts two `eos run ledger` processes, produces
    payments (with duplicates, invalid ones and undecodable bytes), SIGKILLs one processor
    midway and restarts it, waits until everything is processed, verifies, and prints a
    summary. Exit 0 when the ledger verifies.
    """
    from eos.tools.demo import DemoOptions
    from eos.tools.demo import demo as run_demo

    opts = DemoOptions(
        payments=payments, partitions=partitions, accounts=accounts, no_crash=no_crash
    )
    try:
        code = run_demo(opts)
    except EosError as exc:
        fail(f"eos demo: {exc}", 1)
    exit_with(code)


@click.command("chaos", context_settings=CONTEXT_SETTINGS)
@click.option("--payments", type=int, default=1_000_000, show_default=True)
@click.option("--rate", type=int, default=2_000, show_default=True, help="Payments/s.")
@click.option("--processors", type=int, default=3, show_default=True)
@click.option("--partitions", type=int, default=6, show_default=True)
@click.option("--kills", type=int, default=10, show_default=True, help="Processor SIGKILLs.")
@click.option("--pauses", type=int, default=2, show_default=True, help="Processor SIGSTOPs.")
@click.option("--pause-seconds", type=float, default=15.0, show_default=True)
@click.option("--bounces", type=int, default=3, show_default=True, help="Broker SIGKILLs.")
@click.option("--registry-restarts", type=int, default=1, show_default=True)
@click.option("--registry-blocks", type=int, default=1, show_default=True)
@click.option("--registry-block-seconds", type=float, default=60.0, show_default=True)
@click.option("--kafka-port", type=int, default=29192, show_default=True, help="First of 6.")
@click.option("--registry-port", type=int, default=28081, show_default=True)
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The private stack's run folder (default: a new temporary folder).",
)
@click.option("--keep", is_flag=True, help="Leave the private stack running.")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--kill-bars/--no-kill-bars",
    default=True,
    show_default=True,
    help="Fail the run on a kill whose lag took over 20 s to come back, whose takeover "
    "took over 15 s or that left a survivor 2 s without a commit (off: report them only).",
)
@click.option(
    "--static-membership",
    is_flag=True,
    help="Run the processors with EOS_STATIC_MEMBERSHIP (a restart keeps its partitions).",
)
def chaos(
    payments: int,
    rate: int,
    processors: int,
    partitions: int,
    kills: int,
    pauses: int,
    pause_seconds: float,
    bounces: int,
    registry_restarts: int,
    registry_blocks: int,
    registry_block_seconds: float,
    kafka_port: int,
    registry_port: int,
    run_dir: Path | None,
    keep: bool,
    seed: int,
    kill_bars: bool,
    static_membership: bool,
) -> None:
    """The ledger under faults on a private 3-broker stack, then the verifier.

    Starts its own stack (own run folder and ports), N `eos run ledger` processes and a
    bounded-rate load, while processors are SIGKILLed and SIGSTOPped, brokers hard
    bounced and the registry restarted and blocked. Prints a table; exit 0 only when no
    processor exited unexpectedly or went silent, every kill recovered in time (lag,
    takeover of its partitions, commit gaps on the survivors), the
    ledger verifies and no transaction is left open.
    """
    from eos.tools.chaos import ChaosOptions
    from eos.tools.chaos import chaos as run_chaos

    opts = ChaosOptions(
        payments=payments,
        rate=rate,
        processors=processors,
        partitions=partitions,
        kills=kills,
        pauses=pauses,
        pause_seconds=pause_seconds,
        bounces=bounces,
        registry_restarts=registry_restarts,
        registry_blocks=registry_blocks,
        registry_block_seconds=registry_block_seconds,
        kafka_port=kafka_port,
        registry_port=registry_port,
        run_dir=run_dir,
        keep=keep,
        seed=seed,
        kill_bars=kill_bars,
        static_membership=static_membership,
    )
    try:
        code = run_chaos(opts)
    except EosError as exc:
        fail(f"eos chaos: {exc}", 1)
    exit_with(code)
