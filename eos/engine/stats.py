"""What a processor has done, how it reports it, and how it exits."""

from __future__ import annotations

import logging
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from confluent_kafka import KafkaError

from eos.kafka.errors import TransactionError

__all__ = [
    "BATCH_BOUNDS",
    "COMMIT_BOUNDS",
    "EXIT_BREAKER",
    "EXIT_FATAL",
    "EXIT_OK",
    "Buckets",
    "OutageLog",
    "ProgressLog",
    "Stats",
    "advice",
]

log = logging.getLogger("eos.processor")

EXIT_OK = 0
EXIT_FATAL = 1
EXIT_BREAKER = 3

REPORT_EVERY_S = 10.0
COMMIT_BOUNDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)  # seconds
BATCH_BOUNDS = (1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000)  # records


@dataclass
class Buckets:
    """A histogram as plain data: a count per upper bound, their sum and count, read by
    the metrics endpoint (cumulated there, as Prometheus wants)."""

    bounds: tuple[float, ...]
    counts: list[int] = field(init=False)
    total: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.bounds)

    def observe(self, value: float) -> None:
        self.n += 1
        self.total += value
        i = bisect_left(self.bounds, value)
        if i < len(self.counts):
            self.counts[i] += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """(upper bound, observations at or below it), ending with +Inf."""
        out, running = [], 0
        for bound, count in zip(self.bounds, self.counts, strict=True):
            running += count
            out.append((f"{bound:g}", running))
        out.append(("+Inf", self.n))
        return out


@dataclass
class Stats:
    started: float = field(default_factory=time.monotonic)
    records: int = 0
    outputs: int = 0
    dead_lettered: int = 0
    transactions: int = 0
    aborts: int = 0
    retries: int = 0
    recoveries: int = 0  # producers replaced (see eos.engine.recovery)
    registry_waits: int = 0  # batches held while the schema registry was unreachable

    first_batch_at: float | None = None
    last_commit_at: float | None = None
    # this process's CPU time (every thread) at those two moments
    first_batch_cpu: float = 0.0
    last_commit_cpu: float = 0.0
    # When the run loop last came round or deliberately waited (a back-off): /healthz.
    alive_at: float = field(default_factory=time.monotonic)
    dead_letter_reasons: Counter[str] = field(default_factory=Counter)
    commit_seconds: Buckets = field(default_factory=lambda: Buckets(COMMIT_BOUNDS))
    batch_records: Buckets = field(default_factory=lambda: Buckets(BATCH_BOUNDS))

    def batch_started(self) -> None:
        """A batch is in hand: the first one starts the busy time."""
        if self.first_batch_at is None:
            self.first_batch_at = time.monotonic()
            self.first_batch_cpu = time.process_time()

    def committed(
        self,
        records: int,
        outputs: int,
        reasons: Sequence[str],
        seconds: float | None = None,
    ) -> None:
        """A transaction committed with these counts, the reason of each record it
        dead-lettered, and how long its commit took (when timed)."""
        self.records += records
        self.outputs += outputs
        self.dead_lettered += len(reasons)
        self.dead_letter_reasons.update(reasons)
        self.transactions += 1
        self.last_commit_at = time.monotonic()
        self.last_commit_cpu = time.process_time()
        self.batch_records.observe(records)
        if seconds is not None:
            self.commit_seconds.observe(seconds)

    def rate(self) -> float:
        return self.records / max(time.monotonic() - self.started, 1e-9)

    def summary(self) -> dict[str, float | int]:
        """Totals, and the busy time from the first batch to the last commit."""
        busy = (self.last_commit_at or 0.0) - (self.first_batch_at or 0.0)
        return {
            "records": self.records,
            "outputs": self.outputs,
            "dead_lettered": self.dead_lettered,
            "transactions": self.transactions,
            "aborts": self.aborts,
            "retries": self.retries,
            "recoveries": self.recoveries,
            "registry_waits": self.registry_waits,
            "busy_seconds": round(busy, 3),
            "busy_cpu_seconds": round(self.last_commit_cpu - self.first_batch_cpu, 3),
        }


class ProgressLog:
    """A progress line every REPORT_EVERY_S seconds (and on demand): totals and lag.

    `lag` returns the records still to process on the assigned partitions, or None when
    it cannot tell; it is informative only, so any error it raises reads as unknown.
    """

    def __init__(
        self,
        stats: Stats,
        lag: Callable[[], int | None],
        more: Callable[[], str] = lambda: "",
    ) -> None:
        """`more`: text appended to the line (the state stores' figures)."""
        self._stats = stats
        self._lag = lag
        self._more = more
        self._last = time.monotonic()

    def maybe(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < REPORT_EVERY_S:
            return
        self._last = now
        s = self._stats
        try:
            lag = self._lag()
        except Exception:
            lag = None
        try:
            more = self._more()
        except Exception:  # figures for the eye only: never a reason to stop
            more = ""
        log.info(
            "processed %d records (%.0f/s), %d outputs, %d dead-lettered, %d transactions, "
            "%d aborts, %d retries, %d recoveries; lag %s%s",
            s.records,
            s.rate(),
            s.outputs,
            s.dead_lettered,
            s.transactions,
            s.aborts,
            s.retries,
            s.recoveries,
            "unknown" if lag is None else lag,
            more,
        )


class OutageLog:
    """Says that a dependency is down once when it goes, then once a minute, then once
    when it is back: enough to see an outage, not a line per retry."""

    def __init__(self, what: str, every_s: float = 60.0) -> None:
        self._what = what
        self._every = every_s
        self._since: float | None = None
        self._last = 0.0

    def down(self, detail: str) -> None:
        now = time.monotonic()
        if self._since is None:
            self._since = self._last = now
            log.warning("%s: %s; holding the batch (nothing is dead-lettered)", self._what, detail)
        elif now - self._last >= self._every:
            self._last = now
            log.warning(
                "%s for %.0fs: %s; still holding the batch", self._what, now - self._since, detail
            )

    @property
    def down_since(self) -> float | None:
        """Since when (monotonic) the dependency has been down, or None while it is up."""
        return self._since

    def up(self) -> None:
        if self._since is not None:
            log.info("%s: back after %.0fs", self._what, time.monotonic() - self._since)
            self._since = None


def advice(exc: TransactionError) -> str:
    """What the operator should do about a producer that cannot continue."""
    code = exc.error.code()
    if code in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED):
        return (
            "Another instance with the same transactional.id started (this one is a "
            "zombie); it is safe to exit. Give each instance its own EOS_INSTANCE_ID."
        )
    if exc.step == "consume":
        return (
            "The consumer cannot continue (with EOS_STATIC_MEMBERSHIP, the group can fence "
            "a static member after its coordinator moves); restart the instance "
            "(uncommitted work is redone)."
        )
    return "The producer cannot continue; restart the instance (uncommitted work is redone)."
