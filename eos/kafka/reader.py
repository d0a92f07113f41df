"""Read whole topics to a fixed end: the high watermark when the read starts.

A read_committed consumer reports end-of-partition at the last stable offset, so a plain
"read until EOF" silently stops before an open transaction. Reading to the high
watermark instead waits for such a transaction to end, or times out saying so.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from eos.config import EngineSettings
from eos.kafka.clients import connection_config, consumer_config
from eos.kafka.errors import is_settling, kafka_error
from eos.kafka.offsets import TP, Offsets, lag
from eos.kafka.retry import settled

__all__ = [
    "PROGRESS_EVERY",
    "READ_TUNING",
    "Handler",
    "ProgressCallback",
    "ReadProgress",
    "Refused",
    "admitted",
    "read_topics",
    "reader_config",
]

log = logging.getLogger("eos.kafka.reader")

# Faster reads of large topics than the defaults: big fetches, no waiting for full ones.
READ_TUNING = {
    "fetch.wait.max.ms": 10,
    "max.partition.fetch.bytes": 16 * 1024 * 1024,
    "fetch.max.bytes": 100 * 1024 * 1024,
    "queued.max.messages.kbytes": 256 * 1024,
}

# The cluster turned the client away (credentials, SASL mechanism, TLS): asking again
# cannot help, and librdkafka would only retry until the timeout.
REFUSALS = frozenset(
    {
        KafkaError._AUTHENTICATION,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError.UNSUPPORTED_SASL_MECHANISM,
        KafkaError.ILLEGAL_SASL_STATE,
        KafkaError._SSL,
    }
)
# A metadata request waits out its whole timeout when the broker refuses the client;
# asked in short slices, the refusal (served by a poll) ends the wait within a second.
METADATA_SLICE = 1.0
PROGRESS_EVERY = 2.0  # seconds between progress reports

Handler = Callable[[Message], None]


def reader_config(settings: EngineSettings) -> dict[str, Any]:
    """How the processor reaches the cluster, for a reader: its bootstrap servers, its
    security settings and the connection keys of its client overrides; nothing of its
    group or its producer."""
    config = connection_config(consumer_config(settings))
    # Named as a reader, not as the processor instance whose settings these are.
    config["client.id"] = settings.client_overrides.get("client.id", "eos-reader")
    return config


class Refused(RuntimeError):
    """The cluster refused this client (its credentials or its TLS handshake)."""


@dataclass(frozen=True)
class ReadProgress:
    """Where a read stands: records read so far, offsets still to go before every
    partition's end (an upper bound: transaction markers and compacted-away records take
    offsets too), and seconds since the read started."""

    records: int  # read so far
    remaining: int
    seconds: float
    done: bool = False

    @property
    def rate(self) -> float:
        """Records per second since the read started."""
        return self.records / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far; None while no rate is known."""
        if self.remaining <= 0:
            return 0.0
        return self.remaining / self.rate if self.rate > 0 else None

    @property
    def fraction(self) -> float:
        total = self.records + max(self.remaining, 0)
        return self.records / total if total else 1.0


ProgressCallback = Callable[[ReadProgress], None]


def read_topics(
    config: Mapping[str, Any],
    handlers: Mapping[str, Handler],
    timeout: float = 120.0,
    isolation: str = "read_committed",
    partitions: Mapping[str, Collection[int]] | None = None,
    progress: ProgressCallback | None = None,
) -> list[str]:
    """Hand every committed record of each topic to its handler, in offset order per
    partition; returns the topics that do not exist. `partitions` limits a topic's read
    to the partitions it names.

    The snapshot ends at each partition's high watermark when the read starts. Records of
    a transaction still open then are waited for (read_committed holds back everything
    after them until it commits or aborts); TimeoutError when that takes over `timeout`.
    Refused when the cluster does not admit the client.

    `progress` is called every PROGRESS_EVERY seconds while the read goes on, and once
    at its end (`done`), with the records handed to the handlers so far.
    librdkafka's own lines go to the "eos.kafka.reader" logger.
    """
    errors = _Errors()
    consumer = _consumer(config, errors, isolation)
    try:
        meta = _metadata(consumer, errors, timeout)
        parts, missing = _partitions(meta, handlers, partitions)
        if parts:
            end = Offsets(config, timeout=30).high_watermarks(parts)
            consumer.assign([TopicPartition(t, p, 0) for t, p in parts])
            _read(consumer, errors, handlers, end, timeout, progress)
    finally:
        consumer.close()
    return missing


def admitted(config: Mapping[str, Any], timeout: float = 120.0) -> None:
    """Return once the cluster answers a metadata request made with `config`. Refused at
    once when it refuses the client; the request's error after `timeout` otherwise.

    For callers about to use clients that would only time out on refused credentials,
    and say nothing of why (admin clients, registry-backed readers)."""
    errors = _Errors()
    consumer = _consumer(config, errors, "read_committed")
    try:
        _metadata(consumer, errors, timeout)
    finally:
        consumer.close()


def _consumer(config: Mapping[str, Any], errors: _Errors, isolation: str) -> Consumer:
    return Consumer(
        {
            **READ_TUNING,
            "logger": log,
            **config,
            "error_cb": errors,
            "group.id": f"eos-verify-{uuid.uuid4().hex[:8]}",  # never joined: no commits
            "isolation.level": isolation,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        }
    )


class _Errors:
    """The consumer's error callback: remembers the last error, and a refusal (other
    errors follow it, "all brokers down" among them) for the reader's next check."""

    def __init__(self) -> None:
        self.last: KafkaError | None = None
        self.refusal: KafkaError | None = None

    def __call__(self, err: KafkaError) -> None:
        self.last = err
        if err.code() in REFUSALS:
            self.refusal = err

    def check(self) -> None:
        if self.refusal is not None:
            raise Refused(f"the cluster refused the client: {self.refusal.str()}")

    def context(self) -> str:
        """The last error the client saw, to explain a failed request."""
        return f" (last client error: {self.last.str()})" if self.last is not None else ""


def _metadata(consumer: Consumer, errors: _Errors, timeout: float) -> Any:
    """The cluster's metadata, asked again while it settles; Refused at once."""

    def ask() -> Any:
        try:
            return consumer.list_topics(timeout=METADATA_SLICE)
        except KafkaException:
            consumer.poll(0)  # serves the error callback: a refusal is known by now
            errors.check()
            raise

    try:
        return settled(ask, timeout)
    except KafkaException as exc:
        err = kafka_error(exc)
        raise KafkaException(KafkaError(err.code(), err.str() + errors.context())) from exc


def _partitions(
    meta: Any, handlers: Mapping[str, Handler], partitions: Mapping[str, Collection[int]] | None
) -> tuple[list[TP], list[str]]:
    """The partitions to read, in order, and the topics that do not exist."""
    parts: list[TP] = []
    missing: list[str] = []
    for topic in handlers:
        info = meta.topics.get(topic)
        if info is None or not info.partitions:  # a leader being elected still lists them
            missing.append(topic)
            continue
        wanted = partitions.get(topic) if partitions is not None else None
        parts += [(topic, p) for p in sorted(info.partitions) if wanted is None or p in wanted]
    return parts, missing


def _read(
    consumer: Consumer,
    errors: _Errors,
    handlers: Mapping[str, Handler],
    end: Mapping[TP, int],
    timeout: float,
    progress: ProgressCallback | None,
) -> None:
    pending = set(end)
    started = reported = time.monotonic()
    deadline = started + timeout
    read = 0
    while pending:
        now = time.monotonic()
        if now > deadline:
            stuck = sorted(pending)[:5]
            where = ", ".join(f"{t}[{p}] (up to offset {end[(t, p)]})" for t, p in stuck)
            raise TimeoutError(
                f"{len(pending)} partition(s) not read to their end within {timeout:.0f}s "
                f"with read_committed: {where}; is a transaction left open?"
            )
        errors.check()
        if progress is not None and now - reported >= PROGRESS_EVERY:
            reported = now
            progress(ReadProgress(read, _remaining(consumer, pending, end), now - started))
        for msg in consumer.consume(5000, 0.5):
            tp = (msg.topic() or "", msg.partition() or 0)
            if tp not in pending:
                continue
            offset = msg.offset() or 0
            err = msg.error()
            if err is None and offset < end[tp]:
                handlers[tp[0]](msg)
                read += 1
                continue
            if err is not None and err.code() != KafkaError._PARTITION_EOF:
                if is_settling(err):  # a broker bouncing: the consumer fetches again
                    continue
                raise RuntimeError(f"reading {tp[0]}[{tp[1]}]: {err.str()}")
            # EOF at or past the end (below it, a transaction is still open), or a
            # record written after the snapshot started: this partition is done.
            if offset >= end[tp]:
                pending.discard(tp)
                consumer.pause([TopicPartition(*tp)])
    if progress is not None:
        progress(ReadProgress(read, 0, time.monotonic() - started, done=True))


def _remaining(consumer: Consumer, pending: Collection[TP], end: Mapping[TP, int]) -> int:
    """Offsets between each pending partition's fetch position and its end."""
    positions = consumer.position([TopicPartition(t, p) for t, p in sorted(pending)])
    at = {(tp.topic, tp.partition): tp.offset for tp in positions}
    return lag(at, {tp: end[tp] for tp in pending})
