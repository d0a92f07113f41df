"""Stop the processor before it empties a topic into the dead-letter queue."""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterator, Sequence

from eos.config import EngineSettings


class BreakerTripped(Exception):
    """Too many recent records failed; the processor stops instead of dead-lettering them."""


class CircuitBreaker:
    def __init__(
        self, window: int, max_ratio: float, min_records: int, max_consecutive: int
    ) -> None:
        self._recent: deque[bool] = deque(maxlen=window)
        self._max_ratio = max_ratio
        self._min_records = min_records
        self._max_consecutive = max_consecutive
        self._consecutive = 0

    @classmethod
    def from_settings(cls, settings: EngineSettings) -> CircuitBreaker:
        return cls(
            settings.breaker_window,
            settings.breaker_max_dlq_ratio,
            settings.breaker_min_records,
            settings.breaker_max_consecutive,
        )

    @contextlib.contextmanager
    def counting(self, outcomes: Sequence[bool], last_reason: str) -> Iterator[None]:
        """`check` the outcomes before the block (a batch that trips is not committed);
        forget them if the block fails: the batch is redone and they count then."""
        before = self.snapshot()
        self.check(outcomes, last_reason)
        try:
            yield
        except BaseException:
            self.restore(before)
            raise

    def state(self) -> tuple[float, int]:
        """The dead-letter ratio over the recent window, and the failures in a row."""
        recent, consecutive = self._recent, self._consecutive
        return (sum(recent) / len(recent) if recent else 0.0), consecutive

    def snapshot(self) -> tuple[deque[bool], int]:
        """The recorded state; `check` replaces rather than mutates it."""
        return self._recent, self._consecutive

    def restore(self, state: tuple[deque[bool], int]) -> None:
        self._recent, self._consecutive = state

    def check(self, outcomes: Sequence[bool], last_reason: str) -> None:
        """Raise when adding `outcomes` (True = dead-lettered) would trip; else record them.

        Checked before the batch commits, so the batch that trips is not committed.
        """
        recent = deque(self._recent, maxlen=self._recent.maxlen)
        consecutive = self._consecutive
        if True not in outcomes:  # no failure: no run of them to count, record by record
            recent.extend(outcomes)
            consecutive = consecutive if not outcomes else 0
            outcomes = ()
        for failed in outcomes:
            recent.append(failed)
            consecutive = consecutive + 1 if failed else 0
            if consecutive >= self._max_consecutive:
                raise BreakerTripped(
                    f"{consecutive} consecutive records failed (limit "
                    f"EOS_BREAKER_MAX_CONSECUTIVE={self._max_consecutive}); last reason: "
                    f"{last_reason}. Stopping instead of dead-lettering the topic: fix the "
                    "cause, then restart."
                )
        failures = sum(recent)
        if len(recent) >= self._min_records and failures / len(recent) > self._max_ratio:
            raise BreakerTripped(
                f"{failures} of the last {len(recent)} records failed "
                f"({failures / len(recent):.0%} > EOS_BREAKER_MAX_DLQ_RATIO="
                f"{self._max_ratio:.0%}); last reason: {last_reason}. Stopping instead of "
                "dead-lettering the topic: fix the cause, then restart."
            )
        self._recent = recent
        self._consecutive = consecutive
