"""`eos bench`: exactly-once against at-least-once on the same broker, in the same run.

Two phases per mode, each processor a separate process (as in production):
- throughput: 200,000 preloaded Avro events (~200 bytes), processed until caught up;
  records/s over the busy time (first batch to last commit), transactions/s, CPU.
- latency: a steady stream at a fixed rate while the processor runs; for each output,
  the time from the input's append (its broker timestamp) to the moment a read_committed
  consumer sees it; p50 and p99.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from eos.config import EngineSettings
from eos.engine.app import app_subjects
from eos.errors import RunFailed
from eos.examples.events import build
from eos.kafka.admin import create_topic
from eos.kafka.offsets import Offsets, total
from eos.kafka.produce import Encoded, produce
from eos.progress import Progress
from eos.serde import compat
from eos.serde.schemas import contract
from eos.serde.wire import frame, split
from eos.stack.cluster import KafkaCluster, provide_cluster
from eos.tools.bench_plot import append_history, compare, draw, read_history
from eos.tools.commands import run_command

__all__ = ["MODES", "BenchOptions", "bench"]

MODES = ("exactly_once", "at_least_once")


@dataclass(frozen=True)
class BenchOptions:
    records: int = 200_000
    partitions: int = 6
    latency_rate: int = 5_000  # events/s
    latency_seconds: float = 10.0
    batch_max_records: int | None = None  # None: the engine's default
    batch_max_ms: int | None = None
    out: Path = Path("bench-results/latest.json")


def bench(opts: BenchOptions) -> None:
    """Both modes on the cluster `provide_cluster` finds; the table to stdout, the figures
    to `opts.out`. RunFailed when a run does not process every record."""
    with provide_cluster() as cluster:
        print(f"cluster: {cluster.bootstrap_servers} ({cluster.source})", flush=True)
        results = [run_mode(cluster, mode, opts) for mode in MODES]
    report(results, opts.out)


def run_mode(cluster: KafkaCluster, mode: str, opts: BenchOptions) -> dict[str, Any]:
    tag = f"{mode.replace('_', '')}-{uuid.uuid4().hex[:6]}"
    config = cluster.client_config()
    topics = {
        "input": create_topic(config, f"bench-in-{tag}", opts.partitions),
        "output": create_topic(config, f"bench-out-{tag}", opts.partitions),
        "dlq": create_topic(config, f"bench-dlq-{tag}", 1),
    }
    register_events_app(cluster, topics["input"], topics["output"])
    print(f"\n== {mode}: preloading {opts.records:,} events into {topics['input']}", flush=True)
    preload(cluster, topics["input"], opts.records)

    stats_file = Path(tempfile.mkstemp(suffix=".json")[1])
    print(f"== {mode}: processing until caught up", flush=True)
    spawned = time.monotonic()
    proc = spawn(
        cluster,
        mode,
        topics,
        f"g-{tag}",
        opts,
        "--until-caught-up",
        "--stats-json",
        str(stats_file),
    )
    watch_progress(proc, cluster, topics["output"], opts.records)
    # Process start to exit: includes interpreter start, init_transactions and the group join.
    wall = round(time.monotonic() - spawned, 3)
    stats = json.loads(stats_file.read_text())
    stats_file.unlink()
    if stats["records"] != opts.records or stats["exit_code"] != 0:
        raise RunFailed(
            f"{mode}: processed {stats['records']} of {opts.records} "
            f"(exit {stats['exit_code']}); see the log above"
        )

    print(
        f"== {mode}: latency at {opts.latency_rate:,} events/s for {opts.latency_seconds:.0f}s",
        flush=True,
    )
    p50, p99, seen = measure_latency(cluster, mode, topics, f"g-{tag}", opts)
    busy = stats["busy_seconds"]
    return {
        "mode": mode,
        "records": stats["records"],
        "seconds": busy,
        "records_per_s": round(stats["records"] / busy, 1),
        "wall_seconds": wall,
        "wall_records_per_s": round(stats["records"] / wall, 1),
        "transactions": stats["transactions"],
        "transactions_per_s": round(stats["transactions"] / busy, 1),
        "cpu_seconds": stats["cpu_seconds"],
        "cpu_us_per_record": round(stats["cpu_seconds"] / stats["records"] * 1e6, 1),
        "p50_ms": p50,
        "p99_ms": p99,
        "latency_samples": seen,
        "latency_rate_per_s": opts.latency_rate,
    }


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


def _encoder(cluster: KafkaCluster, topic: str) -> tuple[bytes, Any]:
    registry = SchemaRegistryClient(cluster.registry_config())
    event = contract("event")
    schema_id = registry.register_schema(f"{topic}-value", Schema(event.schema_str, "AVRO"))
    return frame(schema_id), event.parsed


def _event(i: int, header: bytes, parsed: Any) -> bytes:
    buf = io.BytesIO()
    buf.write(header)
    fastavro.schemaless_writer(
        buf,
        parsed,
        {
            "id": f"evt-{i:09d}",
            "seq": i,
            "account": f"acct-{i % 1000:04d}",
            "amount": 1000 + i % 5000,
            "action": "ok",
            "created_at_ms": int(time.time() * 1000),
            "payload": "p" * 130,  # brings the record to about 200 bytes
        },
    )
    return buf.getvalue()


def preload(cluster: KafkaCluster, topic: str, count: int) -> None:
    header, parsed = _encoder(cluster, topic)
    producer = Producer(
        {
            "bootstrap.servers": cluster.bootstrap_servers,
            "linger.ms": 20,
            "compression.type": "lz4",
            "enable.idempotence": True,
        }
    )
    progress = Progress("preload", count)
    size = 0
    for i in range(count):
        value = _event(i, header, parsed)
        size += len(value)
        produce(producer, Encoded(topic, f"acct-{i % 1000:04d}".encode(), value, []))
        if i % 1000 == 0:
            producer.poll(0)
            progress.update(i)
    if producer.flush(120):
        raise RunFailed("preload: records still undelivered after 120 s")
    progress.done(count)
    print(f"  average value size {size / count:.0f} bytes", flush=True)


def spawn(
    cluster: KafkaCluster,
    mode: str,
    topics: dict[str, str],
    group: str,
    opts: BenchOptions,
    *extra: str,
) -> subprocess.Popen[bytes]:
    cmd = run_command(
        cluster.bootstrap_servers,
        cluster.schema_registry_url,
        group,
        (topics["input"], topics["output"], topics["dlq"]),
        f"bench-{group}",
        "--mode",
        mode,
        *extra,
    )
    if opts.batch_max_records:
        cmd += ["--batch-max-records", str(opts.batch_max_records)]
    if opts.batch_max_ms:
        cmd += ["--batch-max-ms", str(opts.batch_max_ms)]
    log = open(Path(tempfile.gettempdir()) / f"eos-bench-{group}.log", "wb")  # noqa: SIM115
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def watch_progress(
    proc: subprocess.Popen[bytes], cluster: KafkaCluster, topic: str, expected: int
) -> None:
    """A progress line from the output topic's high watermarks while the processor runs."""
    offsets = Offsets(cluster.client_config())
    partitions = offsets.partitions([topic])
    progress = Progress("process", expected)
    while proc.poll() is None:
        progress.update(min(total(offsets.high_watermarks(partitions)), expected))
        time.sleep(1)
    progress.done(expected)


def measure_latency(
    cluster: KafkaCluster, mode: str, topics: dict[str, str], group: str, opts: BenchOptions
) -> tuple[float, float, int]:
    proc = spawn(cluster, mode, topics, group, opts)
    count = int(opts.latency_rate * opts.latency_seconds)
    latencies: list[float] = []
    stop = threading.Event()

    def read() -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": cluster.bootstrap_servers,
                "group.id": f"lat-{uuid.uuid4().hex[:6]}",
                "isolation.level": "read_committed",
                "auto.offset.reset": "latest",
            }
        )
        consumer.subscribe([topics["output"]])
        parsed = contract("enriched_event").parsed
        while not stop.is_set():
            # Small, quick polls: a batch wait here would count as processing latency.
            for msg in consumer.consume(100, 0.01):
                if msg.error():
                    continue
                seen = time.time() * 1000
                _schema_id, payload = split(msg.value())
                value: Any = fastavro.schemaless_reader(payload, parsed)
                if value["seq"] >= 10**9:
                    latencies.append(seen - value["input_created_at_ms"])
        consumer.close()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(5)  # the processor joins its group, the reader its own
    header, parsed = _encoder(cluster, topics["input"])
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "linger.ms": 1})
    start = time.monotonic()
    for i in range(count):
        # Pace the stream; the event carries its own creation time, taken at send.
        target = start + i / opts.latency_rate
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        producer.produce(
            topics["input"],
            key=f"acct-{i % 1000:04d}".encode(),
            value=_event(10**9 + i, header, parsed),
        )
        producer.poll(0)
    producer.flush(30)
    deadline = time.monotonic() + 30
    while len(latencies) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    stop.set()
    reader.join(10)
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    if not latencies:
        raise RunFailed(f"{mode}: no output seen in the latency phase")
    latencies.sort()
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return round(p50, 1), round(p99, 1), len(latencies)


def report(results: list[dict[str, Any]], out: Path) -> None:
    cols = (
        "mode",
        "records",
        "seconds",
        "records_per_s",
        "transactions_per_s",
        "cpu_us_per_record",
        "p50_ms",
        "p99_ms",
    )
    print()
    print("  ".join(f"{c:>18}" for c in cols))
    for row in results:
        print("  ".join(f"{row[c]:>18}" for c in cols))
    eos, alo = results
    ratio = eos["records_per_s"] / alo["records_per_s"]
    bars = {
        "eos_vs_alo_ratio": round(ratio, 3),
        "eos_vs_alo_bar_met": ratio >= 0.9,
        "eos_20k_bar_met": eos["records_per_s"] >= 20_000,
    }
    print(
        f"\nexactly-once / at-least-once throughput: {ratio:.1%} (bar: >= 90%: "
        f"{'met' if bars['eos_vs_alo_bar_met'] else 'NOT met'})"
    )
    print(
        f"exactly-once records/s: {eos['records_per_s']:,.0f} (bar: >= 20,000: "
        f"{'met' if bars['eos_20k_bar_met'] else 'NOT met'})"
    )
    wall_ratio = eos["wall_records_per_s"] / alo["wall_records_per_s"]
    print(
        f"start to exit (incl. process start and group join): exactly-once "
        f"{eos['wall_records_per_s']:,.0f}/s, at-least-once {alo['wall_records_per_s']:,.0f}/s "
        f"({wall_ratio:.1%})"
    )
    eos["throughput_vs_at_least_once"] = bars["eos_vs_alo_ratio"]
    for row in results:
        row["cpus"] = os.cpu_count()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written to {out}")
    record(results, out)


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
