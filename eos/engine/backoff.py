"""Exponential backoff with full jitter, bounded."""

from __future__ import annotations

import random


def backoff_s(
    attempt: int, initial_ms: int, max_ms: int, rng: random.Random | None = None
) -> float:
    """Seconds to wait before attempt `attempt + 1` (attempt >= 1).

    Full jitter spreads retries of many instances so they do not hammer a recovering
    dependency in step; the cap keeps the wait below the consumer's poll interval.
    """
    ceiling = min(max_ms, initial_ms * 2 ** max(attempt - 1, 0))
    return (rng or random).uniform(ceiling / 2, ceiling) / 1000.0
