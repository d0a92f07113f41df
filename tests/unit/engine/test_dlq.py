"""dlq_record: original bytes verbatim, every eos.dlq.* header, no secret in any header."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from eos.engine import dlq as h
from eos.engine.api import InputRecord, PermanentError
from eos.engine.dlq import Failure, dlq_record, header, log_dead_letters, replay_transform
from eos.engine.records import Consumed
from eos.engine.redact import Redactor
from eos.serde.wire import DecodeError

SECRET = "s3cr3t-Pa55w0rd"
ALL_HEADERS = [
    h.H_TOPIC,
    h.H_PARTITION,
    h.H_OFFSET,
    h.H_TIMESTAMP,
    h.H_ERROR_CLASS,
    h.H_ERROR_REASON,
    h.H_ERROR_MESSAGE,
    h.H_ERROR_STACK,
    h.H_ATTEMPTS,
    h.H_INSTANCE,
    h.H_FAILED_AT,
]


class LeakyError(Exception):
    pass


def _connect(password: str) -> None:
    raise LeakyError(f"login to sasl://user:{password}@broker refused")


def _failure(record: Consumed, reason: str = "PERMANENT", attempts: int = 2) -> Failure:
    try:
        _connect(SECRET)
    except LeakyError as exc:
        return Failure(record, exc, reason, attempts)
    raise AssertionError("unreachable")


RECORD = Consumed(
    topic="orders",
    partition=4,
    offset=1234,
    timestamp_ms=1_700_000_000_123,
    key=b"\x00\xffkey",
    value=b"\x00\x00\x00\x00\x07not-utf8-\xfe\xff",
    headers=[("trace", b"t-1"), ("blob", b"\xff\x00"), ("eos.dlq.error.reason", b"OLD")],
)


def test_every_header_is_set_once_and_key_and_value_are_verbatim() -> None:
    when = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    topic, key, value, headers = dlq_record(
        _failure(RECORD), "orders.dlq", "inst-1", Redactor([SECRET]), when
    )[:4]
    assert topic == "orders.dlq"
    assert key == RECORD.key
    assert value == RECORD.value
    names = [k for k, _ in headers]
    for name in ALL_HEADERS:
        assert names.count(name) == 1, name
    assert all(isinstance(v, bytes) for _, v in headers)
    got = {k: v.decode() for k, v in headers if k.startswith(h.PREFIX)}
    assert got[h.H_TOPIC] == "orders"
    assert got[h.H_PARTITION] == "4"
    assert got[h.H_OFFSET] == "1234"
    assert got[h.H_TIMESTAMP] == "1700000000123"
    assert got[h.H_ERROR_CLASS] == f"{__name__}.LeakyError"
    assert got[h.H_ERROR_REASON] == "PERMANENT"
    assert got[h.H_ATTEMPTS] == "2"
    assert got[h.H_INSTANCE] == "inst-1"
    assert got[h.H_FAILED_AT] == "2024-05-06T07:08:09.123+00:00"
    assert "Traceback" in got[h.H_ERROR_STACK]
    assert "_connect" in got[h.H_ERROR_STACK]


def test_original_headers_are_kept_and_stale_dlq_headers_replaced() -> None:
    headers = dlq_record(_failure(RECORD), "d", "i", Redactor([]))[3]
    assert ("trace", b"t-1") in headers
    assert ("blob", b"\xff\x00") in headers
    assert [v for k, v in headers if k == h.H_ERROR_REASON] == [b"PERMANENT"]
    assert headers[:2] == [("trace", b"t-1"), ("blob", b"\xff\x00")]


def test_secrets_are_in_no_header() -> None:
    failure = _failure(RECORD)
    assert SECRET in str(failure.error)  # the error does carry it
    headers = dlq_record(failure, "d", "i", Redactor(["", SECRET]))[3]
    for name, value in headers:
        assert SECRET.encode() not in value, name
    message = header(headers, h.H_ERROR_MESSAGE)
    stack = header(headers, h.H_ERROR_STACK)
    assert message == "login to sasl://user:***@broker refused"
    assert stack is not None and "user:***@broker" in stack


def test_without_redaction_the_secret_would_leak() -> None:
    # Guards the test above: the secret reaches the headers unless the Redactor removes it.
    headers = dlq_record(_failure(RECORD), "d", "i", Redactor([]))[3]
    assert SECRET in (header(headers, h.H_ERROR_MESSAGE) or "")
    assert SECRET in (header(headers, h.H_ERROR_STACK) or "")


def test_redactor_removes_the_longer_secret_first() -> None:
    redact = Redactor(["abc", "abcdef", ""])
    assert redact("x abcdef y abc z") == "x *** y *** z"


def test_long_messages_and_stacks_are_truncated() -> None:
    failure = Failure(RECORD, PermanentError("m" * 5000), "PERMANENT", 1)
    headers = dlq_record(failure, "d", "i", Redactor([]))[3]
    assert len(header(headers, h.H_ERROR_MESSAGE) or "") == h.MAX_MESSAGE
    assert len(header(headers, h.H_ERROR_STACK) or "") <= h.MAX_STACK


def test_replay_transform_restores_the_original_record() -> None:
    _, key, value, headers = dlq_record(_failure(RECORD), "d", "i", Redactor([]))[:4]
    record = InputRecord("d", 0, 9, 0, key, value, dict(headers), value)
    [out] = replay_transform(record)
    assert out.topic == "orders"
    assert out.key == RECORD.key
    assert out.value == RECORD.value
    assert dict(out.headers) == {"trace": b"t-1", "blob": b"\xff\x00"}


def test_replay_transform_rejects_a_record_that_is_not_a_dead_letter() -> None:
    with pytest.raises(PermanentError, match="not a dead-letter record"):
        replay_transform(InputRecord("d", 0, 0, 0, None, b"v", {}, b"v"))


def test_the_stack_names_files_by_module_path_not_install_path() -> None:
    stack = header(dlq_record(_failure(RECORD), "d", "i", Redactor([]))[3], h.H_ERROR_STACK)
    assert stack is not None
    assert 'File "tests/unit/engine/test_dlq.py"' in stack, stack
    assert str(Path(__file__).resolve().parents[3]) not in stack  # no checkout path


def test_dead_letters_are_one_line_per_batch_with_counts_by_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def failure(reason: str, message: str) -> Failure:
        return Failure(RECORD, DecodeError(reason, message), reason, 1)

    failures = [failure("MALFORMED_AVRO", "cut short")] * 3 + [failure("WRONG_SUBJECT", "x")]
    with caplog.at_level(logging.WARNING, logger="eos.processor"):
        log_dead_letters(failures, Redactor([]))
    assert [r.getMessage() for r in caplog.records] == [
        "dead-lettered 4 record(s): MALFORMED_AVRO x3, WRONG_SUBJECT x1; "
        "first orders[4]@1234: MALFORMED_AVRO: cut short"
    ]
