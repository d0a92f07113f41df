"""Logging: levels, JSON lines, URL credentials and secrets redacted, repeats collapsed."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from eos.logs import LIBRDKAFKA_LOGGER, Collapse, configure, redact_urls


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_url_credentials_are_redacted() -> None:
    line = "GET https://alice:s3cr3t@registry:8081/apis/ccompat/v7/subjects and http://bob@h/x"
    out = redact_urls(line)
    assert "s3cr3t" not in out and "alice" not in out and "bob" not in out
    assert "https://***@registry:8081/apis" in out and "http://***@h/x" in out
    assert redact_urls("http://registry:8081/x user@example.com") == (
        "http://registry:8081/x user@example.com"
    )


def test_json_lines_carry_level_logger_and_message_without_secrets() -> None:
    stream = io.StringIO()
    configure("info", "json", secrets=["hunter2"], stream=stream)
    logging.getLogger("eos.test").info("connecting to %s with %s", "http://u:p@r/x", "hunter2")
    logging.getLogger("eos.test").debug("not shown")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["level"] == "INFO" and entry["logger"] == "eos.test"
    assert entry["message"] == "connecting to http://***@r/x with ***"


def test_a_traceback_is_redacted_too() -> None:
    stream = io.StringIO()
    configure("info", "text", stream=stream)
    try:
        raise ValueError("refused by https://svc:topsecret@registry/")
    except ValueError:
        logging.getLogger("eos.test").exception("failed")
    assert "topsecret" not in stream.getvalue() and "ValueError" in stream.getvalue()


def test_the_http_client_is_quiet_below_warning() -> None:
    stream = io.StringIO()
    configure("debug", "text", stream=stream)
    logging.getLogger("httpx2").info("HTTP Request: GET http://r/x 200")
    logging.getLogger("httpx2").warning("retrying")
    assert stream.getvalue().count("\n") == 1 and "retrying" in stream.getvalue()


def test_an_unknown_level_or_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log level"):
        configure("verbose", "text")


def test_repeats_are_collapsed_and_counted() -> None:
    clock = iter([0.0, 1.0, 2.0, 31.0, 31.5])
    collapse = Collapse(window=30.0)
    collapse_time = lambda: next(clock)  # noqa: E731
    records = [
        logging.LogRecord(LIBRDKAFKA_LOGGER, logging.ERROR, "", 0, msg, (), None)
        for msg in ("FAIL broker down", "FAIL broker down", "FAIL broker down",
                    "FAIL broker down", "other")
    ]  # fmt: skip
    passed = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("eos.logs.time.monotonic", collapse_time)
        passed = [r.getMessage() for r in records if collapse.filter(r)]
    assert passed == ["FAIL broker down", "FAIL broker down (and 2 more like it)", "other"]
