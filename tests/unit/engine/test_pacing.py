"""The batch limit follows the time a full batch takes."""

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


def test_the_limit_grows_back_once_batches_are_fast_again() -> None:
    pace = BatchPace(2000, target_s=1.0)
    pace.took(2000, 40.0)  # a commit that waited on a moved coordinator
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
