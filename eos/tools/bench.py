"""`eos bench`: the engine's throughput against the client's own, on one preloaded input.

Modes, each a separate process as in production, interleaved over `rounds` rounds on
the same preloaded input (a fresh group and output topic each run):
- `exactly_once`, `at_least_once`: `eos run events` (Avro in, a transform, Avro out);
- `copy`: `eos run copy`, exactly once, raw bytes through (the engine's own cost);
- `ceiling`: a minimal confluent-kafka transactional loop (eos.tools.bench_ceiling) with
  the engine's client settings and batch size.
Throughput is records over the busy time (first batch to last commit), CPU over the same
span; the median of the rounds is the figure, with its spread. Then, for the two events
modes, end-to-end latency (input append to read_committed visibility) of a steady
stream: p50 and p99.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient

from eos.config import EngineSettings
from eos.engine.app import app_subjects
from eos.errors import RunFailed
from eos.examples.events import build
from eos.kafka.admin import create_topic, delete_topics
from eos.kafka.offsets import Offsets, total
from eos.progress import Progress
from eos.serde import compat
from eos.serde.avro import subject_for
from eos.serde.registry import delete_subjects
from eos.stack.cluster import KafkaCluster, provide_cluster
from eos.tools.bench_load import measure_latency, preload
from eos.tools.bench_plot import append_history, compare, draw, read_history
from eos.tools.commands import run_command

__all__ = ["MODES", "BenchOptions", "bench", "register_events_app"]

MODES = ("exactly_once", "at_least_once", "copy", "ceiling")
LATENCY_MODES = ("exactly_once", "at_least_once")


@dataclass(frozen=True)
class BenchOptions:
    records: int = 200_000
    partitions: int = 6
    rounds: int = 3
    modes: Sequence[str] = field(default=MODES)
    latency_rate: int = 5_000  # events/s
    latency_seconds: float = 10.0
    latency_warmup_seconds: float = 2.0  # streamed first, not counted
    batch_max_records: int | None = None  # None: the engine's default
    batch_max_ms: int | None = None
    out: Path = Path("bench-results/latest.json")


def bench(opts: BenchOptions) -> None:
    """Every mode on the cluster `provide_cluster` finds; the table to stdout, the
    figures to `opts.out`. RunFailed when a run does not process every record."""
    with provide_cluster() as cluster:
        print(f"cluster: {cluster.bootstrap_servers} ({cluster.source})", flush=True)
        tag = uuid.uuid4().hex[:6]
        source = create_topic(cluster.client_config(), f"bench-in-{tag}", opts.partitions)
        created = [source]  # deleted at the end: runs on one stack must not pile them up
        try:
            runs, latency = _measure(cluster, source, opts, created)
        finally:
            left = delete_topics(cluster.client_config(), created)
            registry = SchemaRegistryClient(cluster.registry_config())
            left += delete_subjects(registry, [subject_for(t) for t in created])
            if left:
                print(f"could not delete the bench's {', '.join(left)}", flush=True)
    report([summarize(m, opts.records, runs[m], latency.get(m)) for m in opts.modes], opts)


def _measure(
    cluster: KafkaCluster, source: str, opts: BenchOptions, created: list[str]
) -> tuple[dict[str, list[dict[str, float]]], dict[str, tuple[float, float]]]:
    """Every round of every mode, then each events mode's latency."""
    print(f"\n== preloading {opts.records:,} events into {source}", flush=True)
    preload(cluster, source, opts.records)
    runs: dict[str, list[dict[str, float]]] = {m: [] for m in opts.modes}
    for r in range(1, opts.rounds + 1):
        for mode in opts.modes:
            run = throughput(cluster, mode, source, opts, created)
            runs[mode].append(run)
            print(
                f"   round {r}/{opts.rounds} {mode:>13}: {run['records_per_s']:>9,.0f} "
                f"records/s, {run['cpu_us_per_record']:.1f} µs CPU a record",
                flush=True,
            )
    modes = [m for m in opts.modes if m in LATENCY_MODES]
    return runs, {m: latency_run(cluster, m, opts, created) for m in modes}


def register_events_app(cluster: KafkaCluster, input_topic: str, output_topic: str) -> None:
    """What setup does before processors start: register the app's schemas."""
    settings = EngineSettings(
        bootstrap_servers=cluster.bootstrap_servers,
        schema_registry_url=cluster.schema_registry_url,
        input_topics=[input_topic],
        output_topic=output_topic,
    )
    registry = SchemaRegistryClient(cluster.registry_config())
    compat.register_subjects(registry, app_subjects(build(settings)))


def throughput(
    cluster: KafkaCluster, mode: str, source: str, opts: BenchOptions, created: list[str]
) -> dict[str, float]:
    """One run of `mode` through the whole preloaded input."""
    tag = f"{mode.replace('_', '')}-{uuid.uuid4().hex[:6]}"
    topics = run_topics(cluster, tag, opts.partitions, created, source)
    if mode in LATENCY_MODES:
        register_events_app(cluster, source, topics["output"])
    stats_file = Path(tempfile.mkstemp(suffix=".json")[1])
    proc = start(cluster, mode, topics, f"g-{tag}", opts, stats_file)
    watch_progress(proc, cluster, topics["output"], opts.records)
    stats = json.loads(stats_file.read_text())
    stats_file.unlink()
    stats_file.with_suffix(".settings.json").unlink(missing_ok=True)  # the ceiling's
    if stats["records"] != opts.records or stats["exit_code"] != 0:
        raise RunFailed(
            f"{mode}: processed {stats['records']} of {opts.records} "
            f"(exit {stats['exit_code']}); see {log_path(f'g-{tag}')}"
        )
    busy = stats["busy_seconds"]
    return {
        "seconds": busy,
        "records_per_s": round(stats["records"] / busy, 1),
        "cpu_us_per_record": round(stats["busy_cpu_seconds"] / stats["records"] * 1e6, 2),
    }


def run_topics(
    cluster: KafkaCluster,
    tag: str,
    partitions: int,
    created: list[str],
    source: str | None = None,
) -> dict[str, str]:
    """A run's topics: its input (`source`, else a new one), a new output and DLQ; the
    new ones are added to `created`."""
    config = cluster.client_config()
    topics = {
        "input": source or create_topic(config, f"bench-in-{tag}", partitions),
        "output": create_topic(config, f"bench-out-{tag}", partitions),
        "dlq": create_topic(config, f"bench-dlq-{tag}", 1),
    }
    created.extend(t for t in topics.values() if t != source)
    return topics


def start(
    cluster: KafkaCluster,
    mode: str,
    topics: dict[str, str],
    group: str,
    opts: BenchOptions,
    stats_file: Path | None,
) -> subprocess.Popen[bytes]:
    """The process of `mode`: until caught up when it has a `stats_file` to write."""
    if mode == "ceiling":
        assert stats_file is not None
        settings = stats_file.with_suffix(".settings.json")
        settings.write_text(json.dumps(_settings(cluster, topics, group, opts)))
        cmd = [sys.executable, "-m", "eos.tools.bench_ceiling", str(settings), str(stats_file)]
    else:
        app, run_mode = ("copy", "exactly_once") if mode == "copy" else ("events", mode)
        extra = ["--mode", run_mode]
        if stats_file is not None:
            extra += ["--until-caught-up", "--stats-json", str(stats_file)]
        if opts.batch_max_records:
            extra += ["--batch-max-records", str(opts.batch_max_records)]
        if opts.batch_max_ms:
            extra += ["--batch-max-ms", str(opts.batch_max_ms)]
        cmd = run_command(
            cluster.bootstrap_servers,
            cluster.schema_registry_url,
            group,
            (topics["input"], topics["output"], topics["dlq"]),
            f"bench-{group}",
            *extra,
            app=app,
        )
    log = open(log_path(group), "wb")  # noqa: SIM115
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def _settings(
    cluster: KafkaCluster, topics: dict[str, str], group: str, opts: BenchOptions
) -> dict[str, Any]:
    """The ceiling loop's settings: the engine's defaults and this bench's batch size."""
    given: dict[str, Any] = {
        "bootstrap_servers": cluster.bootstrap_servers,
        "schema_registry_url": cluster.schema_registry_url,
        "group_id": group,
        "input_topics": [topics["input"]],
        "output_topic": topics["output"],
        "instance_id": f"bench-{group}",
        "transactional_id_prefix": group,
    }
    if opts.batch_max_records:
        given["batch_max_records"] = opts.batch_max_records
    if opts.batch_max_ms:
        given["batch_max_ms"] = opts.batch_max_ms
    return given


def log_path(group: str) -> Path:
    return Path(tempfile.gettempdir()) / f"eos-bench-{group}.log"


def watch_progress(
    proc: subprocess.Popen[bytes], cluster: KafkaCluster, topic: str, expected: int
) -> None:
    """A progress line from the output topic's high watermarks while the process runs."""
    with Offsets(cluster.client_config()) as offsets:
        partitions = offsets.partitions([topic])
        progress = Progress("process", expected)
        while proc.poll() is None:
            progress.update(min(total(offsets.high_watermarks(partitions)), expected))
            time.sleep(1)
        progress.done(expected)


def latency_run(
    cluster: KafkaCluster, mode: str, opts: BenchOptions, created: list[str]
) -> tuple[float, float]:
    """p50 and p99 of a steady stream through a processor of `mode` on empty topics."""
    print(
        f"\n== {mode}: latency at {opts.latency_rate:,} events/s for "
        f"{opts.latency_warmup_seconds:g} s of warm-up, then {opts.latency_seconds:g} s",
        flush=True,
    )
    tag = f"lat-{uuid.uuid4().hex[:6]}"
    topics = run_topics(cluster, tag, opts.partitions, created)
    register_events_app(cluster, topics["input"], topics["output"])
    lat = measure_latency(
        cluster,
        topics["input"],
        topics["output"],
        lambda: start(cluster, mode, topics, f"g-{tag}", opts, None),
        opts.latency_rate,
        opts.latency_seconds,
        opts.latency_warmup_seconds,
    )
    early = f", its max {lat.warmup_max:,.0f} ms" if lat.warmup_max is not None else ""
    print(
        f"  p50 {lat.p50:,.0f} ms, p99 {lat.p99:,.0f} ms over {lat.samples:,} events; "
        f"the first {opts.latency_warmup_seconds:g} s of warm-up not counted{early}",
        flush=True,
    )
    return lat.p50, lat.p99


def summarize(
    mode: str, records: int, runs: list[dict[str, float]], latency: tuple[float, float] | None
) -> dict[str, Any]:
    rates = [r["records_per_s"] for r in runs]
    return {
        "mode": mode,
        "records": records,
        "seconds": statistics.median(r["seconds"] for r in runs),
        "records_per_s": statistics.median(rates),
        "records_per_s_min": min(rates),
        "records_per_s_max": max(rates),
        "cpu_us_per_record": statistics.median(r["cpu_us_per_record"] for r in runs),
        "p50_ms": latency[0] if latency else None,
        "p99_ms": latency[1] if latency else None,
        "rounds": len(runs),
        "cpus": os.cpu_count(),
    }


def report(rows: list[dict[str, Any]], opts: BenchOptions) -> None:
    print(f"\n{'mode':>13} {'records/s':>10} {'min':>9} {'max':>9} {'µs CPU/rec':>10} "
          f"{'p50 ms':>8} {'p99 ms':>8}")  # fmt: skip
    for r in rows:
        p50, p99 = (f"{r[k]:,.0f}" if r[k] is not None else "-" for k in ("p50_ms", "p99_ms"))
        print(
            f"{r['mode']:>13} {r['records_per_s']:>10,.0f} {r['records_per_s_min']:>9,.0f} "
            f"{r['records_per_s_max']:>9,.0f} {r['cpu_us_per_record']:>10.1f} {p50:>8} {p99:>8}"
        )
    for line in bars({r["mode"]: r for r in rows}, opts):
        print(line)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(rows, indent=2))
    print(f"written to {opts.out}")
    record(rows, opts.out)


def bars(by_mode: dict[str, dict[str, Any]], opts: BenchOptions) -> list[str]:
    """The performance bars, each with its figure (medians of the rounds)."""

    def line(what: str, figure: str, met: bool) -> str:
        return f"{what}: {figure} ({'met' if met else 'NOT met'})"

    out = []
    eos, alo = by_mode.get("exactly_once"), by_mode.get("at_least_once")
    copy, ceiling = by_mode.get("copy"), by_mode.get("ceiling")
    if copy and ceiling:
        share = copy["records_per_s"] / ceiling["records_per_s"]
        out.append(line("copy / ceiling (bar >= 60%)", f"{share:.1%}", share >= 0.6))
    if eos:
        rate = eos["records_per_s"]
        out.append(line("exactly-once records/s (bar >= 80,000)", f"{rate:,.0f}", rate >= 80_000))
    if eos and alo:
        ratio = eos["records_per_s"] / alo["records_per_s"]
        out.append(line("exactly-once / at-least-once (bar >= 95%)", f"{ratio:.1%}", ratio >= 0.95))
    if eos and eos["p99_ms"] is not None:
        limit = (opts.batch_max_ms or EngineSettings.model_fields["batch_max_ms"].default) + 150
        out.append(
            line(
                f"exactly-once p99 at {opts.latency_rate:,}/s (bar <= {limit} ms)",
                f"{eos['p99_ms']:,.0f} ms",
                eos["p99_ms"] <= limit,
            )
        )
    return out


def record(results: list[dict[str, Any]], out: Path) -> None:
    """Appends the run to the history beside `out`, compares it with the run before and
    draws both as a PNG beside `out`."""
    history_file = out.with_name("history.jsonl")
    append_history(history_file, results)
    history = read_history(history_file)
    for line in compare(history):
        print(line)
    try:
        png = draw(history, out.with_suffix(".png"))
    except ImportError:
        print("no chart: matplotlib is not installed (pip install 'eos[bench]')")
        return
    print(f"history in {history_file} ({len(history)} run(s)), chart in {png}")
