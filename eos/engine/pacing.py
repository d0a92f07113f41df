"""How many records the next batch may take.

A batch is one transaction, and its length is how long its first record waits for its
commit and how long a member goes without committing. On a machine short of CPU (a
takeover's backlog, a restart next door) 2,000 records can take seconds. So a
batch takes at most `EOS_BATCH_MAX_RECORDS`, and no more than its records can be
processed and committed in about `EOS_BATCH_TARGET_MS`, judged by the full batches
before it (as Kafka Streams bounds a transaction by its commit interval). A batch that
is not full says nothing about the rate: the input ran dry, not the time.

A batch's time is a commit, whose cost hardly depends on the batch's size, plus its
records' processing. The two are measured apart: taken as one cost a record, a slow
commit (a moved coordinator, a cluster warming up) would shrink the next batch, whose
commit takes as long again, and so on down to the floor, where the commit costs the
most a record. The records get the target less the commit, and never less than half the
target.

Plain data: the processor times each batch and its commit and asks for the next limit.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["BatchPace"]

FULL = 0.9  # a batch with this share of its limit counts as full


def _smooth(old: float | None, new: float) -> float:
    return new if old is None else (old + new) / 2


class BatchPace:
    def __init__(self, most: int, target_s: float, least: int = 50) -> None:
        self._most, self._target = most, target_s
        self._least = min(least, most)
        self._per_record: float | None = None  # seconds, smoothed over full batches
        self._commit: float | None = None  # seconds, smoothed over every commit
        self._committing = 0.0  # the batch in hand's commit time so far
        self.limit = most

    def took(self, records: int, seconds: float, commit_s: float = 0.0) -> None:
        """A batch of `records`, consumed under the current limit, took `seconds` to
        process and commit, `commit_s` of them committing."""
        if records <= 0:
            return
        self._commit = _smooth(self._commit, commit_s)
        if records < FULL * self.limit:
            return
        per = max(seconds - commit_s, 0.0) / records
        self._per_record = _smooth(self._per_record, per)
        if self._per_record <= 0:
            self.limit = self._most
            return
        budget = max(self._target - self._commit, self._target / 2)
        self.limit = max(self._least, min(self._most, int(budget / self._per_record)))

    @contextmanager
    def timing(self, records: int) -> Iterator[None]:
        """Time a batch; one that raises is not counted."""
        started = time.monotonic()
        self._committing = 0.0
        yield
        self.took(records, time.monotonic() - started, self._committing)

    @contextmanager
    def committing(self) -> Iterator[None]:
        """Time a commit of the batch in hand (inside `timing`)."""
        started = time.monotonic()
        try:
            yield
        finally:
            self._committing += time.monotonic() - started
