"""Lag and open-transaction arithmetic."""

from __future__ import annotations

from eos.kafka.offsets import lag, open_transactions, total


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
