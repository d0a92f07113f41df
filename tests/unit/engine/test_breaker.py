"""CircuitBreaker: stop before a bad deploy or bad producer empties a topic into the DLQ."""

from __future__ import annotations

import random

import pytest

from eos.engine.breaker import BreakerTripped, CircuitBreaker


def test_trips_on_consecutive_failures() -> None:
    breaker = CircuitBreaker(window=1000, max_ratio=1.0, min_records=10_000, max_consecutive=5)
    breaker.check([True] * 4, "PERMANENT")
    with pytest.raises(BreakerTripped, match="5 consecutive records failed") as info:
        breaker.check([True], "PERMANENT: bad")
    assert "EOS_BREAKER_MAX_CONSECUTIVE=5" in str(info.value)
    assert "PERMANENT: bad" in str(info.value)


def test_a_success_resets_the_consecutive_count() -> None:
    breaker = CircuitBreaker(window=1000, max_ratio=1.0, min_records=10_000, max_consecutive=5)
    for _ in range(10):
        breaker.check([True, True, True, True, False], "PERMANENT")


def test_trips_when_the_ratio_exceeds_the_threshold_after_min_records() -> None:
    breaker = CircuitBreaker(window=20, max_ratio=0.5, min_records=10, max_consecutive=1000)
    # 5 of 9 failed (56%) but fewer than min_records were seen: no verdict yet.
    breaker.check([False, True] * 4 + [True], "PERMANENT")
    with pytest.raises(BreakerTripped, match="EOS_BREAKER_MAX_DLQ_RATIO") as info:
        breaker.check([True], "PERMANENT")  # 6 of 10 = 60% > 50%
    assert "6 of the last 10 records failed" in str(info.value)


def test_exactly_the_threshold_does_not_trip() -> None:
    breaker = CircuitBreaker(window=10, max_ratio=0.5, min_records=10, max_consecutive=1000)
    breaker.check([True, False] * 5, "PERMANENT")  # 50% is not above 50%
    breaker.check([True, False] * 50, "PERMANENT")


def test_the_ratio_only_counts_the_window() -> None:
    breaker = CircuitBreaker(window=10, max_ratio=0.5, min_records=10, max_consecutive=1000)
    breaker.check([False] * 1000, "")  # old successes must not dilute new failures
    breaker.check([True] * 5, "PERMANENT")  # 5 of the last 10
    with pytest.raises(BreakerTripped, match="6 of the last 10 records failed"):
        breaker.check([True], "PERMANENT")


def test_the_batch_that_trips_is_not_recorded() -> None:
    breaker = CircuitBreaker(window=1000, max_ratio=1.0, min_records=10_000, max_consecutive=5)
    breaker.check([True] * 3, "PERMANENT")
    with pytest.raises(BreakerTripped):
        breaker.check([True] * 3, "PERMANENT")  # would make 6
    breaker.check([True], "PERMANENT")  # 4: the rejected batch's 3 did not count
    with pytest.raises(BreakerTripped):
        breaker.check([True], "PERMANENT")  # 5


def test_the_batch_that_trips_the_ratio_is_not_recorded() -> None:
    breaker = CircuitBreaker(window=100, max_ratio=0.5, min_records=10, max_consecutive=1000)
    breaker.check([False] * 10, "")
    with pytest.raises(BreakerTripped):
        breaker.check([True] * 11, "PERMANENT")  # 11 of 21 failed
    breaker.check([True] * 10, "PERMANENT")  # 10 of 20: the 11 were not kept


def test_healthy_traffic_never_trips() -> None:
    rng = random.Random(7)
    breaker = CircuitBreaker(window=1000, max_ratio=0.5, min_records=100, max_consecutive=200)
    for _ in range(200):
        breaker.check([rng.random() < 0.1 for _ in range(100)], "PERMANENT")
    for _ in range(20):
        breaker.check([False] * 500, "")


def test_a_batch_of_successes_ends_a_run_of_failures() -> None:
    breaker = CircuitBreaker(window=1000, max_ratio=1.0, min_records=10_000, max_consecutive=5)
    breaker.check([True] * 4, "PERMANENT")
    breaker.check([False] * 3, "")
    breaker.check([True] * 4, "PERMANENT")  # 4 in a row again, not 8
    breaker.check([], "")  # an empty batch changes nothing
    with pytest.raises(BreakerTripped, match="5 consecutive"):
        breaker.check([True], "PERMANENT")


def test_a_batch_of_successes_can_bring_the_window_to_a_verdict() -> None:
    breaker = CircuitBreaker(window=100, max_ratio=0.5, min_records=10, max_consecutive=1000)
    breaker.check([True] * 8, "PERMANENT")  # fewer than min_records: no verdict yet
    with pytest.raises(BreakerTripped, match="8 of the last 10 records failed"):
        breaker.check([False] * 2, "")
