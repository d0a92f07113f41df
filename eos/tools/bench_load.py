"""`eos bench`'s input: events preloaded for the throughput runs, and a paced stream
whose end-to-end latency (input append to read_committed visibility) is measured."""

from __future__ import annotations

import io
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fastavro
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from eos.errors import RunFailed
from eos.kafka.produce import Encoded, produce
from eos.progress import Progress
from eos.serde.schemas import contract
from eos.serde.wire import frame, split
from eos.stack.cluster import KafkaCluster

__all__ = ["Latency", "latency_figures", "measure_latency", "preload"]

# The latency stream's event numbers start here, apart from the preloaded ones.
FIRST = 10**9


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


@dataclass(frozen=True)
class Latency:
    """End-to-end latency of a paced stream, in ms, the warm-up left out."""

    p50: float
    p99: float
    samples: int
    warmup_max: float | None  # the worst of the warm-up, shown beside, never counted


def latency_figures(seen: dict[int, float], warmup: int) -> Latency:
    """Percentiles of `seen` (event number → latency) past the first `warmup` events.

    A processor's first batches after start-up pay one-off costs (schema lookups, the
    first transaction's partitions, the broker's caches): they are not the steady
    stream the figure describes, and in a short run they alone would set its p99."""
    steady = sorted(ms for n, ms in seen.items() if n >= warmup)
    if not steady:
        raise RunFailed("no output seen past the warm-up of the latency phase")
    early = [ms for n, ms in seen.items() if n < warmup]
    return Latency(
        p50=round(steady[len(steady) // 2], 1),
        p99=round(steady[min(len(steady) - 1, int(len(steady) * 0.99))], 1),
        samples=len(steady),
        warmup_max=round(max(early), 1) if early else None,
    )


def measure_latency(
    cluster: KafkaCluster,
    input_topic: str,
    output_topic: str,
    start: Callable[[], subprocess.Popen[bytes]],
    rate: int,
    seconds: float,
    warmup_seconds: float = 0.0,
) -> Latency:
    """Latency of `rate` events/s for `warmup_seconds`, not counted, then `seconds`,
    through the processor `start` starts (SIGTERMed at the end)."""
    proc = start()
    warmup = int(rate * warmup_seconds)
    count = warmup + int(rate * seconds)
    latencies: dict[int, float] = {}
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
        consumer.subscribe([output_topic])
        parsed = contract("enriched_event").parsed
        while not stop.is_set():
            # Small, quick polls: a batch wait here would count as processing latency.
            for msg in consumer.consume(100, 0.01):
                if msg.error():
                    continue
                seen = time.time() * 1000
                _schema_id, payload = split(msg.value())
                value: Any = fastavro.schemaless_reader(payload, parsed)
                if value["seq"] >= FIRST:
                    latencies[value["seq"] - FIRST] = seen - value["input_created_at_ms"]
        consumer.close()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(5)  # the processor joins its group, the reader its own
    header, parsed = _encoder(cluster, input_topic)
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "linger.ms": 1})
    began = time.monotonic()
    for i in range(count):
        # Pace the stream; the event carries its own creation time, taken at send.
        target = began + i / rate
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        producer.produce(
            input_topic,
            key=f"acct-{i % 1000:04d}".encode(),
            value=_event(FIRST + i, header, parsed),
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
        raise RunFailed(f"no output seen in the latency phase on {output_topic}")
    return latency_figures(latencies, warmup)
