"""Dead-letter records: the original bytes verbatim plus headers saying what went wrong."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

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

MAX_MESSAGE = 1000
MAX_STACK = 4000


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
) -> Encoded:
    """The DLQ record for a failure: key and value are the original bytes."""
    rec = failure.record
    error = failure.error
    stack = "".join(traceback.format_exception(type(error), error, error.__traceback__))
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
    return Encoded(dlq_topic, rec.key, rec.value, headers)


def log_dead_letters(failures: Sequence[Failure], redact: Redactor) -> None:
    """One line per record a committed batch dead-lettered."""
    for f in failures:
        log.warning("dead-lettered %s: %s %s", f.record.where, f.reason, redact(str(f.error))[:200])


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
