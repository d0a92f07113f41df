"""How the process logs: a level and a format (text or JSON lines) on stderr, credentials
taken out of every line, librdkafka's own log routed through Python logging with its
repeats collapsed, and the HTTP client quiet below WARNING.

Redaction happens in the formatter, on the finished line, so that a URL with a user and
password in it is caught wherever it comes from: a message, its arguments, a traceback.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterable
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

from eos.engine.redact import Redactor
from eos.kafka.clients import LIBRDKAFKA_LOGGER

__all__ = [
    "FORMATS",
    "LEVELS",
    "LIBRDKAFKA_LOGGER",
    "Collapse",
    "RedactingFormatter",
    "configure",
    "redact_urls",
]

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# httpx logs every request at INFO (a thousand lines in a run), with its URL.
QUIET = ("httpx", "httpx2", "httpcore", "httpcore2")

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/@:]+(?::[^\s/@]*)?@")


def redact_urls(text: str) -> str:
    """`text` with the user and password of every URL in it replaced by ***."""
    return _USERINFO.sub(r"\1***@", text)


class RedactingFormatter(logging.Formatter):
    """Formats with `inner`, then removes URL credentials and the given secrets."""

    def __init__(self, inner: logging.Formatter, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.inner = inner
        self.redact = Redactor(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(redact_urls(self.inner.format(record)))


class Collapse(logging.Filter):
    """Lets a message through once per `window` seconds; the next one after the window
    says how many identical ones were held back. librdkafka repeats a failing
    connection's line every second for as long as it fails."""

    def __init__(self, window: float = 30.0) -> None:
        super().__init__()
        self.window = window
        self._seen: dict[str, tuple[float, int]] = {}  # message: (shown at, held back)

    def filter(self, record: logging.LogRecord) -> bool:
        key = record.getMessage()
        now = time.monotonic()
        shown = self._seen.get(key)
        if shown is not None and now - shown[0] < self.window:
            self._seen[key] = (shown[0], shown[1] + 1)
            return False
        if shown is not None and shown[1]:
            record.msg, record.args = f"{key} (and {shown[1]} more like it)", ()
        if len(self._seen) > 1000:  # messages with ever-changing text: do not grow
            self._seen.clear()
        self._seen[key] = (now, 0)
        return True


def configure(
    level: str = "info",
    fmt: str = "text",
    *,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Log at `level` in `fmt` to `stream` (stderr), replacing any handler before."""
    if level.lower() not in LEVELS or fmt.lower() not in FORMATS:
        raise ValueError(f"log level one of {LEVELS}, format one of {FORMATS}")
    inner: logging.Formatter
    if fmt.lower() == "json":
        inner = JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    else:
        inner = logging.Formatter(TEXT)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(RedactingFormatter(inner, secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    librdkafka = logging.getLogger(LIBRDKAFKA_LOGGER)
    if not any(isinstance(f, Collapse) for f in librdkafka.filters):
        librdkafka.addFilter(Collapse())
