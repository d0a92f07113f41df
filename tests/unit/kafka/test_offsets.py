"""Lag and open-transaction arithmetic."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

from eos.kafka.offsets import lag, open_transactions, total
from eos.kafka.retry import settled


def test_lag_counts_from_zero_where_nothing_is_committed_and_never_goes_negative() -> None:
    ends = {("t", 0): 10, ("t", 1): 5, ("t", 2): 7}
    committed = {("t", 0): 4, ("t", 1): -1001, ("t", 2): 9}
    assert lag(committed, ends) == 6 + 5 + 0


def test_total_ignores_partitions_without_a_committed_offset() -> None:
    assert total({("t", 0): 4, ("t", 1): -1001}) == 4


def test_a_transaction_is_open_where_records_were_written_past_the_stable_offset() -> None:
    stable = {("t", 0): 10, ("t", 1): 5}
    written = {("t", 0): 10, ("t", 1): 8}
    assert open_transactions(stable, written) == [("t", 1)]


def test_settled_asks_again_while_the_cluster_settles_then_gives_up() -> None:
    answers: list[BaseException | str] = [
        KafkaException(KafkaError(KafkaError.NOT_COORDINATOR)),
        TimeoutError(),  # a request future not answered in time, as after a broker bounce
        KafkaException(KafkaError(KafkaError.FENCED_LEADER_EPOCH)),
        "done",
    ]

    def ask() -> str:
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    assert settled(ask, timeout=30) == "done"
    with pytest.raises(KafkaException):
        settled(lambda: (_ for _ in ()).throw(KafkaException(KafkaError(KafkaError._FAIL))), 30)
