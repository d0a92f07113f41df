"""Dead-letter records: the original bytes verbatim plus headers saying what went wrong."""

from __future__ import annotations

import functools
import hashlib
import logging
import sys
import traceback
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from eos.engine.api import InputRecord, OutputRecord, PermanentError
from eos.engine.records import Consumed, Encoded
from eos.engine.redact import Redactor

log = logging.getLogger("eos.processor")

PREFIX = "eos.dlq."
H_TOPIC = PREFIX + "topic"
H_PARTITION = PREFIX + "partition"
H_OFFSET = PREFIX + "offset"
H_TIMESTAMP = PREFIX + "timestamp"
H_ERROR_CLASS = PREFIX + "error.class"
H_ERROR_REASON = PREFIX + "error.reason"
H_ERROR_MESSAGE = PREFIX + "error.message"
H_ERROR_STACK = PREFIX + "error.stack"
H_ATTEMPTS = PREFIX + "attempts"
H_INSTANCE = PREFIX + "instance"
H_FAILED_AT = PREFIX + "failed.at"
H_VALUE_SIZE = PREFIX + "value.size"
H_VALUE_SHA256 = PREFIX + "value.sha256"
H_VALUE_TRUNCATED = PREFIX + "value.truncated"


def replay_failed_topic(dlq_topic: str) -> str:
    """Where `eos dlq replay` puts the records it cannot re-publish."""
    return f"{dlq_topic}.replay-failed"


MAX_MESSAGE = 1000
MAX_STACK = 4000
# What a DLQ record may weigh (key, value and headers): below librdkafka's default
# message.max.bytes (1,000,000) and the broker's max.message.bytes (1,048,588), with room
# for the batch's own overhead. A larger original value is cut to fit.
DLQ_MAX_BYTES = 900_000
# The last resort when the DLQ refuses even that: provenance and error, a few bytes.
DLQ_MIN_BYTES = 16_384


@dataclass(frozen=True)
class Failure:
    """One input record that goes to the DLQ instead of the outputs."""

    record: Consumed
    error: BaseException
    reason: str  # a short code: MALFORMED_AVRO, PERMANENT, TRANSIENT_EXHAUSTED, UNEXPECTED, ...
    attempts: int


def dlq_record(
    failure: Failure,
    dlq_topic: str,
    instance: str,
    redact: Redactor,
    failed_at: datetime | None = None,
    max_bytes: int = DLQ_MAX_BYTES,
) -> Encoded:
    """The DLQ record for a failure: key and value are the original bytes, the value cut
    to fit `max_bytes` if need be (its size and SHA-256 then say what it was)."""
    rec = failure.record
    error = failure.error
    stack = _stack(error)
    when = (failed_at or datetime.now(UTC)).isoformat(timespec="milliseconds")
    ours = [
        (H_TOPIC, rec.topic),
        (H_PARTITION, str(rec.partition)),
        (H_OFFSET, str(rec.offset)),
        (H_TIMESTAMP, str(rec.timestamp_ms)),
        (H_ERROR_CLASS, f"{type(error).__module__}.{type(error).__qualname__}"),
        (H_ERROR_REASON, failure.reason),
        (H_ERROR_MESSAGE, redact(str(error))[:MAX_MESSAGE]),
        (H_ERROR_STACK, redact(stack)[-MAX_STACK:]),
        (H_ATTEMPTS, str(failure.attempts)),
        (H_INSTANCE, instance),
        (H_FAILED_AT, when),
    ]
    original = [(k, v) for k, v in rec.headers if not k.startswith(PREFIX)]
    headers = original + [(k, v.encode("utf-8")) for k, v in ours]
    key, value = rec.key, rec.value
    room = max_bytes - _size(key, None, headers) - 512  # the three headers below
    if value is not None and len(value) > room:
        headers += [
            (H_VALUE_SIZE, str(len(value)).encode()),
            (H_VALUE_SHA256, hashlib.sha256(value).hexdigest().encode()),
            (H_VALUE_TRUNCATED, b"true"),
        ]
        value = value[: max(room, 0)]
        if room < 0:  # headers and key alone are too large: keep the provenance only
            headers = headers[len(original) :]
            key = None if key is None else key[: max_bytes // 4]
    return Encoded(dlq_topic, key, value, headers)


def _size(key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]]) -> int:
    return len(key or b"") + len(value or b"") + sum(len(k) + len(v) for k, v in headers)


def log_dead_letters(failures: Sequence[Failure], redact: Redactor) -> None:
    """One line per committed batch that dead-lettered records: counts by reason and the
    first record's place and message (every record's at DEBUG)."""
    if not failures:
        return
    if log.isEnabledFor(logging.DEBUG):
        for f in failures:
            log.debug("dead-lettered %s: %s", f.record.where, _message(f, redact))
    counts = Counter(f.reason for f in failures)
    first = failures[0]
    log.warning(
        "dead-lettered %d record(s): %s; first %s: %s",
        len(failures),
        ", ".join(f"{reason} x{n}" for reason, n in counts.most_common()),
        first.record.where,
        _message(first, redact),
    )


def _message(failure: Failure, redact: Redactor) -> str:
    """The error's message led by its reason once (a DecodeError's text already is)."""
    text = redact(str(failure.error))[:200]
    return text if text.startswith(failure.reason) else f"{failure.reason}: {text}"


def _stack(error: BaseException) -> str:
    """The traceback with each file named relative to its import root (`eos/engine/
    batch.py`), not by its install path."""
    frames = traceback.extract_tb(error.__traceback__)
    roots = _import_roots(tuple(sys.path))
    for frame in frames:
        frame.filename = _relative(frame.filename, roots)
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames)]
    return "".join(lines + traceback.format_exception_only(type(error), error))


@functools.cache
def _import_roots(path: tuple[str, ...]) -> tuple[str, ...]:
    """`sys.path` resolved, longest first; resolved once per distinct `sys.path`."""
    return tuple(sorted((str(Path(p).resolve()) for p in path if p), key=len, reverse=True))


def _relative(filename: str, roots: tuple[str, ...]) -> str:
    for root in roots:
        if filename.startswith(root + "/"):
            return filename[len(root) + 1 :]
    return Path(filename).name


def header(headers: Sequence[tuple[str, bytes]] | dict[str, bytes], name: str) -> str | None:
    items = headers.items() if isinstance(headers, dict) else headers
    for key, value in items:
        if key == name:
            return value.decode("utf-8", "replace")
    return None


def replay_transform(record: InputRecord) -> list[OutputRecord]:
    """Re-publish a DLQ record to its original topic, bytes and headers as they were."""
    topic = record.headers.get(H_TOPIC)
    if topic is None:
        raise PermanentError(f"record has no {H_TOPIC} header: not a dead-letter record")
    original = {k: v for k, v in record.headers.items() if not k.startswith(PREFIX)}
    return [OutputRecord(topic.decode(), record.key, record.raw_value, original)]
