"""The progress line's lag, from what the consumer's own fetches brought."""

from __future__ import annotations

from typing import cast

from confluent_kafka import Consumer, TopicPartition

from eos.kafka.offsets import consumer_lag


class Fetched:
    """A consumer whose positions and cached high watermarks are given."""

    def __init__(self, state: dict[tuple[str, int], tuple[int, int]]) -> None:
        self.state = state  # (position, cached high watermark); negative: none yet

    def position(self, tps: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(t.topic, t.partition, self.state[(t.topic, t.partition)][0])
                for t in tps]  # fmt: skip

    def get_watermark_offsets(self, tp: TopicPartition, cached: bool) -> tuple[int, int]:
        assert cached
        return -1001, self.state[(tp.topic, tp.partition)][1]


def test_lag_counts_what_each_partition_has_left() -> None:
    consumer = Fetched({("a", 0): (10, 15), ("a", 1): (-1001, 7)})  # 1: nothing read yet
    assert consumer_lag(cast(Consumer, consumer), [("a", 0), ("a", 1)]) == 5


def test_a_partition_never_fetched_makes_the_lag_unknown_not_zero() -> None:
    consumer = Fetched({("a", 0): (15, 15), ("a", 1): (-1001, -1001)})
    assert consumer_lag(cast(Consumer, consumer), [("a", 0), ("a", 1)]) is None
