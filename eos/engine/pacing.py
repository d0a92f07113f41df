"""How many records the next batch may take.

A batch is one transaction, and its length is how long its first record waits for its
commit and how long a member goes without committing. On a machine short of CPU (a
takeover's backlog, a restart next door) 2,000 records can take seconds. So a
batch takes at most `EOS_BATCH_MAX_RECORDS`, and no more than its records can be
processed and committed in about `EOS_BATCH_TARGET_MS`, judged by the full batches
before it (as Kafka Streams bounds a transaction by its commit interval). A batch that
is not full says nothing about the rate: the input ran dry, not the time.

Plain data: the processor times each batch and asks for the next limit.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["BatchPace"]

FULL = 0.9  # a batch with this share of its limit counts as full


class BatchPace:
    def __init__(self, most: int, target_s: float, least: int = 50) -> None:
        self._most, self._target = most, target_s
        self._least = min(least, most)
        self._per_record: float | None = None  # seconds, smoothed over full batches
        self.limit = most

    def took(self, records: int, seconds: float) -> None:
        """A batch of `records`, consumed under the current limit, took `seconds` to
        process and commit."""
        if records <= 0 or records < FULL * self.limit:
            return
        per = seconds / records
        self._per_record = per if self._per_record is None else (self._per_record + per) / 2
        if self._per_record <= 0:
            self.limit = self._most
            return
        fits = int(self._target / self._per_record)
        self.limit = max(self._least, min(self._most, fits))

    @contextmanager
    def timing(self, records: int) -> Iterator[None]:
        """Time a batch; one that raises is not counted."""
        started = time.monotonic()
        yield
        self.took(records, time.monotonic() - started)
