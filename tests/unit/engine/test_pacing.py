"""The batch limit follows the time a full batch takes to process; the commit's time
comes off the target, not off each record."""

from __future__ import annotations

import pytest

from eos.engine.pacing import BatchPace


def test_a_fast_batch_keeps_the_configured_limit() -> None:
    pace = BatchPace(2000, target_s=1.0)
    pace.took(2000, 0.4)
    assert pace.limit == 2000


def test_a_slow_batch_shrinks_the_next_to_about_the_target() -> None:
    pace = BatchPace(2000, target_s=1.0)
    pace.took(2000, 4.0)  # 2 ms a record: 500 fit in a second
    assert pace.limit == 500


def test_the_commit_time_comes_off_the_target() -> None:
    pace = BatchPace(2000, target_s=1.0)
    pace.took(2000, 4.2, commit_s=0.2)  # 2 ms a record, 0.8 s left for them
    assert pace.limit == 400


def test_a_slow_commit_does_not_shrink_batches_to_the_floor() -> None:
    pace = BatchPace(2000, target_s=0.5)
    for _ in range(20):  # commits slower than the target, records at 0.1 ms
        n = pace.limit
        pace.took(n, 0.6 + n * 0.0001, commit_s=0.6)
    assert pace.limit == 2000  # half the target still fits 2,500 records


def test_the_limit_grows_back_once_batches_are_fast_again() -> None:
    pace = BatchPace(2000, target_s=1.0)
    pace.took(2000, 40.0)  # records that took 20 ms each (a starved machine)
    assert pace.limit == 50  # never below the floor
    for _ in range(10):
        pace.took(pace.limit, pace.limit * 0.0002)
    assert pace.limit == 2000


def test_a_batch_that_is_not_full_says_nothing_about_the_rate() -> None:
    pace = BatchPace(2000, target_s=1.0)
    pace.took(10, 0.5)  # the input ran dry: the commit's latency, not the records'
    assert pace.limit == 2000


def test_a_batch_that_raises_is_not_counted() -> None:
    pace = BatchPace(2000, target_s=1.0)
    with pytest.raises(RuntimeError), pace.timing(2000):
        raise RuntimeError("aborted")
    assert pace.limit == 2000
