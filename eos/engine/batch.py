"""Run the transform over a batch, outside any transaction: decode, transform, encode.

Nothing here talks to Kafka, so a failure costs no abort. The result says which
records produced which outputs and which go to the dead-letter topic.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from eos.engine.api import (
    NO_HEADERS,
    InputRecord,
    OutputRecord,
    PermanentError,
    Transform,
    TransientError,
)
from eos.engine.dlq import Failure
from eos.engine.records import Consumed, Encoded
from eos.serde.avro import (
    NOT_CACHED,
    AvroDecoder,
    AvroEncoder,
    DecodeError,
    EncodeError,
    RegistryUnavailable,
    SchemaNotRegistered,
)

RecordKey = tuple[str, int, int]
AHEAD_STEP_S = 0.001  # decoding ahead between looks at whether the commit is back
# Builds a NamedTuple from a tuple of every field without its generated __new__, which
# takes keywords and defaults: half the cost, paid twice per record.
_new = tuple.__new__


class Stateful(Protocol):
    """A state store's hooks into the batch (see eos.engine.state)."""

    def begin_batch(self) -> None: ...
    def end_record(self, ok: bool) -> None: ...
    def changelog_records(self) -> list[Encoded]: ...


class Topics(Protocol):
    """Whether a topic exists (cached; see eos.kafka.metadata.TopicCache)."""

    def __call__(self, topic: str) -> bool: ...
    def forget(self) -> None: ...


class RecordTransient(Exception):
    """A record failed transiently; the batch is retried after a backoff."""

    def __init__(self, record: Consumed, error: BaseException) -> None:
        super().__init__(str(error))
        self.record = record
        self.error = error


class UnknownTopic(PermanentError):
    """An output aimed at a topic that does not exist (deleted, or named by a header)."""


class RegistryDown(Exception):
    """The schema registry cannot answer for a record (unreachable, or a schema not yet
    registered): the batch waits, however long; it is never the record's fault."""

    def __init__(self, record: Consumed, error: BaseException) -> None:
        super().__init__(str(error))
        self.record = record
        self.error = error


class RecordUnexpected(Exception):
    """A record raised an unexpected exception; the batch is redone with isolation."""

    def __init__(self, record: Consumed, error: BaseException) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.record = record
        self.error = error


@dataclass
class BatchResult:
    records: Sequence[Consumed]
    outputs: list[Encoded] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    def outcomes(self) -> list[bool]:
        """Per record, whether it was dead-lettered (for the circuit breaker)."""
        if not self.failures:
            return [False] * len(self.records)
        failed = {id(f.record) for f in self.failures}
        return [id(r) in failed for r in self.records]


def key_of(rec: Consumed) -> RecordKey:
    return rec.topic, rec.partition, rec.offset


class BatchRunner:
    def __init__(
        self,
        transform: Transform,
        decoders: Mapping[str, AvroDecoder | None],
        encoders: Mapping[str, AvroEncoder],
        max_attempts: int,
        stores: Sequence[Stateful] = (),
        fallback_encoder: Callable[[str], AvroEncoder | None] | None = None,
        topics: Topics | None = None,
    ) -> None:
        self._transform = transform
        self._decoders = decoders
        self._encoders = encoders
        self._max_attempts = max_attempts
        self._stores = stores
        self._fallback_encoder = fallback_encoder
        self._topics = topics
        self._exists: set[str] = set()  # output topics found to exist in this batch
        # Values decoded ahead (decode_ahead), by id of their record, with the record
        # itself: kept alive, so its id cannot be reused while the entry lasts.
        self._ahead: dict[int, tuple[Consumed, Any]] = {}

    def topics_changed(self) -> None:
        """A produce said a topic is gone: check destinations afresh."""
        self._exists.clear()
        if self._topics is not None:
            self._topics.forget()

    def run(
        self, records: Sequence[Consumed], attempts: Mapping[RecordKey, int], isolate: bool = False
    ) -> BatchResult:
        """Process `records` in order.

        `attempts` counts earlier transient failures per record: at the limit, a transient
        failure counts as permanent. With `isolate`, an unexpected exception condemns only
        the record that raised it; without, it stops the batch (RecordUnexpected).
        """
        result = BatchResult(records)
        stores = self._stores
        for store in stores:
            store.begin_batch()
        self._exists.clear()
        one, extend = self._one, result.outputs.extend
        for rec in records:
            # Most batches have no earlier failures: no key to build per record then.
            tries = attempts.get(key_of(rec), 0) + 1 if attempts else 1
            ok = False
            try:
                extend(one(rec))
                ok = True
            except DecodeError as exc:
                result.failures.append(Failure(rec, exc, exc.reason, tries))
            except EncodeError as exc:
                result.failures.append(Failure(rec, exc, "OUTPUT_SCHEMA", tries))
            except UnknownTopic as exc:
                result.failures.append(Failure(rec, exc, "UNKNOWN_TOPIC", tries))
            except PermanentError as exc:
                result.failures.append(Failure(rec, exc, "PERMANENT", tries))
            except (RegistryUnavailable, SchemaNotRegistered) as exc:
                raise RegistryDown(rec, exc) from exc
            except TransientError as exc:
                if tries >= self._max_attempts:
                    result.failures.append(Failure(rec, exc, "TRANSIENT_EXHAUSTED", tries))
                else:
                    raise RecordTransient(rec, exc) from exc
            except Exception as exc:
                if not isolate:
                    raise RecordUnexpected(rec, exc) from exc
                result.failures.append(Failure(rec, exc, "UNEXPECTED", tries))
            finally:
                for store in stores:
                    store.end_record(ok)
        for store in stores:
            extend(store.changelog_records())
        return result

    def decode_ahead(self, records: Sequence[Consumed]) -> Iterator[None]:
        """Decode `records` (those of the next batch) now, yielding about every
        AHEAD_STEP_S, for `run` to take when it reaches them: work for a thread that waits
        on a commit. Decoding is a function of the record's bytes and writer schema, so a
        value decoded ahead is the one `run` would decode; only what decodes, without
        asking the registry, is kept. Each value is taken once (a batch redone decodes
        again); values of records no longer coming (dropped by a rebalance or a rewind)
        are let go here."""
        if not any(self._decoders.values()):
            return  # raw bytes in: nothing to decode
        coming = {id(rec) for rec in records}
        ahead = self._ahead = {k: v for k, v in self._ahead.items() if k in coming}
        clock = time.monotonic
        last = clock()
        for rec in records:
            decoder = self._decoders.get(rec.topic)
            if decoder is None or id(rec) in ahead:
                continue
            try:
                value = decoder.decode(rec.value, cached_only=True)
            except Exception:  # `run` decodes it again and says why
                continue
            if value is not NOT_CACHED:
                ahead[id(rec)] = (rec, value)
            if clock() - last >= AHEAD_STEP_S:
                yield
                last = clock()
        yield

    def _one(self, rec: Consumed) -> list[Encoded]:
        topic, partition, offset, timestamp_ms, key, raw, raw_headers = rec
        decoder = self._decoders.get(topic)
        done = self._ahead.pop(id(rec), None) if self._ahead else None
        if done is not None and done[0] is rec:
            value = done[1]
        else:
            value = raw if decoder is None else decoder.decode(raw)
        headers = dict(raw_headers) if raw_headers else NO_HEADERS
        record = _new(
            InputRecord, (topic, partition, offset, timestamp_ms, key, value, headers, raw)
        )
        return [self._encode(out) for out in self._transform(record)]

    def _encode(self, out: OutputRecord) -> Encoded:
        topic, key, value, headers = out
        if topic not in self._exists:
            self._check_topic(topic)
        if isinstance(key, str):
            key = key.encode("utf-8")
        if value is not None and not isinstance(value, bytes):
            value = self._encoder(topic).encode(value)
        if not headers:
            return _new(Encoded, (topic, key, value, [], -1))
        encoded = [(k, v.encode("utf-8") if isinstance(v, str) else v) for k, v in headers.items()]
        return _new(Encoded, (topic, key, value, encoded, -1))

    def _check_topic(self, topic: str) -> None:
        """Whether an output topic exists, asked once per batch and topic."""
        if self._topics is not None and not self._topics(topic):
            raise UnknownTopic(f"output topic {topic!r} does not exist")
        self._exists.add(topic)

    def _encoder(self, topic: str) -> AvroEncoder:
        encoder = self._encoders.get(topic)
        if encoder is None and self._fallback_encoder is not None:
            encoder = self._fallback_encoder(topic)
        if encoder is None:
            raise PermanentError(f"transform produced to {topic!r}, which has no output contract")
        return encoder
