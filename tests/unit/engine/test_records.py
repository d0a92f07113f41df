"""backoff_s and next_offsets."""

from __future__ import annotations

import random

import pytest
from confluent_kafka import TopicPartition

from eos.engine.backoff import backoff_s
from eos.engine.records import Consumed, next_offsets


@pytest.mark.parametrize("attempt", range(1, 40))
def test_backoff_stays_between_half_the_ceiling_and_the_ceiling(attempt: int) -> None:
    rng = random.Random(attempt)
    ceiling_ms = min(10_000, 100 * 2 ** (attempt - 1))
    for _ in range(200):
        wait = backoff_s(attempt, 100, 10_000, rng)
        assert ceiling_ms / 2 / 1000 <= wait <= ceiling_ms / 1000
        assert wait <= 10.0


def test_backoff_grows_exponentially_until_the_cap() -> None:
    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    waits = [backoff_s(n, 100, 1000, Top()) for n in range(1, 7)]
    assert waits == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_backoff_is_jittered() -> None:
    rng = random.Random(1)
    assert len({backoff_s(5, 100, 10_000, rng) for _ in range(20)}) > 10


def test_backoff_attempt_zero_is_like_the_first() -> None:
    assert 0.05 <= backoff_s(0, 100, 10_000) <= 0.1


def _rec(topic: str, partition: int, offset: int) -> Consumed:
    return Consumed(topic, partition, offset, 0, None, b"", [])


def test_next_offsets_is_the_last_offset_plus_one_per_partition_sorted() -> None:
    records = [
        _rec("b", 0, 7),
        _rec("a", 1, 10),
        _rec("a", 0, 3),
        _rec("a", 1, 11),
        _rec("a", 0, 4),
        _rec("b", 0, 5),  # out of order: the highest still wins
    ]
    got = [(tp.topic, tp.partition, tp.offset) for tp in next_offsets(records)]
    assert got == [("a", 0, 5), ("a", 1, 12), ("b", 0, 8)]
    assert all(isinstance(tp, TopicPartition) for tp in next_offsets(records))


def test_next_offsets_of_nothing_is_nothing() -> None:
    assert next_offsets([]) == []


def test_next_offsets_of_offset_zero() -> None:
    [tp] = next_offsets([_rec("a", 2, 0)])
    assert (tp.topic, tp.partition, tp.offset) == ("a", 2, 1)
