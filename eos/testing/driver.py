"""`TestDriver`: an App's records through the engine's batch path, without a broker.

What the processor does with a batch, minus Kafka. Each record is decoded with its
input topic's contract, transformed and its outputs encoded with their contracts by the
processor's own `BatchRunner`; failures are classified the same way (a transient one is
retried up to EOS_RETRY_MAX_ATTEMPTS and then dead-lettered, an unexpected one is
isolated to the record that raised it); dead-letter records are built by the engine's
`dlq_record`, headers and all; state stores stage a record's writes and apply them only
when its batch commits, and their changelog records are kept like any other output.
Schemas live in an in-memory registry (`MemoryRegistry`) holding the app's contracts,
as `eos schemas register` would register them.

What needs a broker is not here: transactions, offsets, rebalances, restores, the
circuit breaker and batch pacing. Test those with the `eos_app` fixture.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient

from eos.config import EngineSettings
from eos.engine.app import App, Codecs, app_subjects
from eos.engine.batch import BatchRunner, RecordTransient, RecordUnexpected, RegistryDown
from eos.engine.dlq import PREFIX, dlq_record
from eos.engine.records import Consumed, Encoded
from eos.engine.redact import Redactor
from eos.errors import EosError
from eos.kafka.partitioner import partition_for
from eos.serde.avro import AvroDecoder, AvroEncoder, subject_for
from eos.testing.registry import MemoryRegistry

__all__ = ["DeadLetter", "DriverError", "Produced", "Step", "TestDriver"]

Key = str | bytes | None


class DriverError(EosError):
    """The driver cannot feed a record as asked (a topic the app does not read, a value
    its contract cannot encode, a schema missing from the registry)."""


@dataclass(frozen=True)
class Produced:
    """A record the app wrote: `value` decoded with its topic's contract (a changelog's
    JSON decoded; a DLQ record's and a raw topic's are the bytes, as `raw`)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: Any
    raw: bytes | None = field(repr=False)
    headers: dict[str, bytes] = field(default_factory=dict)

    @property
    def key_str(self) -> str | None:
        return None if self.key is None else self.key.decode("utf-8", "replace")


@dataclass(frozen=True)
class DeadLetter:
    """A dead-letter record: the original key and bytes, and what its headers say."""

    record: Produced

    @property
    def headers(self) -> dict[str, str]:
        return {k: v.decode("utf-8", "replace") for k, v in self.record.headers.items()}

    def _eos(self, name: str) -> str:
        return self.headers.get(PREFIX + name, "")

    @property
    def reason(self) -> str:
        return self._eos("error.reason")

    @property
    def message(self) -> str:
        return self._eos("error.message")

    @property
    def source(self) -> tuple[str, int, int]:
        """Where the failed record was read: topic, partition, offset."""
        return self._eos("topic"), int(self._eos("partition")), int(self._eos("offset"))


@dataclass(frozen=True)
class Step:
    """What one batch produced, in order."""

    outputs: list[Produced]
    dead_letters: list[DeadLetter]

    def to(self, topic: str) -> list[Produced]:
        return [p for p in self.outputs if p.topic == topic]


class _Topics:
    """BatchRunner's topic check: the app's own topics and those the test declared."""

    def __init__(self, known: Iterable[str]) -> None:
        self.known = set(known)

    def __call__(self, topic: str) -> bool:
        return topic in self.known

    def forget(self) -> None:
        pass


class TestDriver:
    """Feeds records to an App (or an AppFactory) and collects what it writes, per
    topic, as the processor would have committed it. `partitions`: every topic's
    partition count (a keyed record's partition is the producer's murmur2 choice);
    `topics`: further topics that exist (reply-to topics named at run time);
    `registry`: a schema registry client instead of the in-memory one."""

    __test__ = False  # a pytest collector must not take it for a test class

    def __init__(
        self,
        app: App | Callable[[EngineSettings], App],
        settings: EngineSettings | None = None,
        *,
        partitions: int = 1,
        topics: Iterable[str] = (),
        state_dir: Path | None = None,
        registry: SchemaRegistryClient | None = None,
    ) -> None:
        self.settings = settings or EngineSettings(instance_id="test-driver")
        self.app = app if isinstance(app, App) else app(self.settings)
        self.partitions = partitions
        # A real registry (where the contracts are registered) reads records that a real
        # producer wrote; by default, the contracts in memory.
        self.registry = registry or MemoryRegistry(app_subjects(self.app))
        self._redact = Redactor(self.settings.secrets())
        self._log: dict[str, list[Produced]] = defaultdict(list)
        self._next: dict[tuple[str, int], int] = defaultdict(int)
        self._tmp = None if state_dir else tempfile.TemporaryDirectory(prefix="eos-driver-")
        self._runner = self._make_runner(topics)
        self._open_stores(state_dir or Path(self._tmp.name if self._tmp else "."))

    def _make_runner(self, topics: Iterable[str]) -> BatchRunner:
        """The processor's codecs and batch runner; and, to read back what it wrote and
        to write what it reads, the other direction of each contract."""
        app, reg = self.app, self.registry
        outs = app.outputs.items()
        self._out_decoders = {t: AvroDecoder(reg, c, subject_for(t)) for t, c in outs}
        self._in_encoders = {t: AvroEncoder(reg, t, c) for t, c in app.inputs.items() if c}
        dynamic = app.dynamic_output
        self._dynamic_decoder = AvroDecoder(reg, dynamic) if dynamic is not None else None
        self._changelogs = {s.changelog_topic for s in app.stores}
        known = [*app.inputs, *app.outputs, self.settings.dlq_topic, *self._changelogs, *topics]
        codecs = Codecs.of(reg, app)
        return codecs.runner(app, self.settings.retry_max_attempts, _Topics(known))

    def _open_stores(self, directory: Path) -> None:
        for store in self.app.stores:
            store.bind(directory, {"cluster": "eos-test-driver", "topic_id": ""})
            for p in range(self.partitions):
                store.open(p)
                store.mark_ready(p)

    # -- feeding --------------------------------------------------------------------------

    def pipe(
        self,
        topic: str,
        value: Any,
        key: Key = None,
        *,
        headers: Mapping[str, str | bytes] | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> Step:
        """One record as a batch of its own. `value`: bytes are sent as they are (to
        test what a broken producer writes), None is a tombstone, anything else is
        encoded with the topic's contract."""
        return self.pipe_batch([self.record(topic, value, key, headers, partition, timestamp_ms)])

    def pipe_all(self, topic: str, items: Iterable[tuple[Key, Any]]) -> Step:
        """(key, value) pairs read as one batch: one transaction in the processor."""
        return self.pipe_batch([self.record(topic, v, k) for k, v in items])

    def record(
        self,
        topic: str,
        value: Any,
        key: Key = None,
        headers: Mapping[str, str | bytes] | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> Consumed:
        """The record as the consumer would hand it over, at the topic's next offset."""
        if topic not in self.app.inputs:
            raise DriverError(f"app {self.app.name} does not read {topic!r}")
        raw_key = key.encode() if isinstance(key, str) else key
        p = partition if partition is not None else self._partition(raw_key)
        if not 0 <= p < self.partitions:
            raise DriverError(f"partition {p} of {topic!r}: it has {self.partitions}")
        offset = self._take_offset(topic, p)
        hdrs = [(k, v.encode() if isinstance(v, str) else v) for k, v in (headers or {}).items()]
        when = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
        return Consumed(topic, p, offset, when, raw_key, self._encode_input(topic, value), hdrs)

    def _encode_input(self, topic: str, value: Any) -> bytes | None:
        if value is None or isinstance(value, bytes):
            return value
        encoder = self._in_encoders.get(topic)
        if encoder is None:
            raise DriverError(f"{topic!r} has no contract: give its values as bytes")
        try:
            return encoder.encode(value)
        except Exception as exc:
            raise DriverError(f"{topic!r}: cannot encode the value given: {exc}") from exc

    def _take_offset(self, topic: str, partition: int) -> int:
        """The next offset of a partition, as its log would give it."""
        offset = self._next[(topic, partition)]
        self._next[(topic, partition)] = offset + 1
        return offset

    def _partition(self, key: bytes | None) -> int:
        return 0 if key is None else partition_for(key, self.partitions)

    def pipe_batch(self, records: Sequence[Consumed]) -> Step:
        """Records (from `record`) processed and committed as one batch."""
        attempts: dict[tuple[str, int, int], int] = {}
        isolate = False
        while True:
            try:
                result = self._runner.run(records, attempts, isolate)
                break
            except RecordTransient as exc:  # the processor backs off and redoes the batch
                where = (exc.record.topic, exc.record.partition, exc.record.offset)
                attempts[where] = attempts.get(where, 0) + 1
            except RecordUnexpected:
                isolate = True  # redone, condemning only the record that raises
            except RegistryDown as exc:
                raise DriverError(f"schema registry: {exc.error}") from exc
        s = self.settings
        dlq = [dlq_record(f, s.dlq_topic, s.instance_id, self._redact) for f in result.failures]
        outputs = [self._append(e) for e in result.outputs]
        letters = [DeadLetter(self._append(e)) for e in dlq]
        delivered = {
            (p.topic, p.partition): p.offset for p in outputs if p.topic in self._changelogs
        }
        for store in self.app.stores:
            store.commit_batch(delivered)
        return Step(outputs, letters)

    def _append(self, out: Encoded) -> Produced:
        p = out.partition if out.partition >= 0 else self._partition(out.key)
        offset = self._take_offset(out.topic, p)
        value = self._decode_output(out.topic, out.value)
        produced = Produced(out.topic, p, offset, out.key, value, out.value, dict(out.headers))
        self._log[out.topic].append(produced)
        return produced

    def _decode_output(self, topic: str, raw: bytes | None) -> Any:
        if raw is None:
            return None
        if topic in self._changelogs:
            return json.loads(raw)
        decoder = self._out_decoders.get(topic)
        if decoder is None and topic != self.settings.dlq_topic:
            decoder = self._dynamic_decoder
        return raw if decoder is None else decoder.decode(raw)

    # -- reading --------------------------------------------------------------------------

    def output(self, topic: str) -> list[Produced]:
        """Everything written to `topic` so far, in the order written."""
        return list(self._log.get(topic, []))

    def dead_letters(self) -> list[DeadLetter]:
        return [DeadLetter(p) for p in self._log.get(self.settings.dlq_topic, [])]

    def state(self, store: str) -> dict[tuple[int, str], Any]:
        """A store's committed contents, (partition, key) -> value: its changelog as
        compaction leaves it (a tombstone removes the key)."""
        topic = next((s.changelog_topic for s in self.app.stores if s.name == store), None)
        if topic is None:
            raise DriverError(f"app {self.app.name} has no store {store!r}")
        return changelog_state(self._log.get(topic, []))

    def close(self) -> None:
        for store in self.app.stores:
            store.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> TestDriver:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def changelog_state(records: Iterable[Produced]) -> dict[tuple[int, str], Any]:
    """(partition, key) -> the last value written, tombstones removing their key."""
    out: dict[tuple[int, str], Any] = {}
    for rec in records:
        key = (rec.partition, rec.key_str or "")
        if rec.raw is None:
            out.pop(key, None)
        else:
            out[key] = rec.value
    return out
