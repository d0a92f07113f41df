"""Co-partitioning, enforced where partitions are owned: plain data, no broker."""

from __future__ import annotations

import pytest

from eos.engine.copartition import PartitionsChanged, StorePartitions, check_counts

A, B = "payments", "credits"


def test_a_store_partition_is_restored_only_where_every_input_has_it() -> None:
    parts = StorePartitions([A, B], stateful=True)
    restore, split = parts.assigned({(A, 0), (B, 0), (A, 1)})
    assert (restore, split) == ({0}, {1})
    assert not any(parts.may_process(tp) for tp in [(A, 0), (B, 0), (A, 1)])
    assert parts.ready({0}) == {0}
    assert [tp for tp in [(A, 0), (B, 0), (A, 1)] if not parts.may_process(tp)] == [(A, 1)]
    # The rest of partition 1 arrives (an incremental assignment): now it is whole.
    restore, split = parts.assigned({(A, 0), (B, 0), (A, 1), (B, 1)})
    assert (restore, split) == ({1}, set())


def test_two_members_with_different_subscriptions_never_both_process_a_partition() -> None:
    # Member one reads A and B, member two (another version of the app) only A. Whatever
    # the assignor does with A's partitions, each has one owner.
    one, two = StorePartitions([A, B], True), StorePartitions([A], True)
    a_one = {(A, p) for p in range(6) if p % 2 == 0}
    a_two = {(A, p) for p in range(6) if p % 2 == 1}
    b_one = {(B, p) for p in range(6)}
    restore_one, _ = one.assigned(a_one | b_one)
    restore_two, _ = two.assigned(a_two)
    one.ready(restore_one)
    two.ready(restore_two)
    assert one.active == {0, 2, 4} and two.active == {1, 3, 5}
    assert not one.active & two.active
    assert all(not one.may_process((B, p)) for p in (1, 3, 5))


def test_a_revoked_input_takes_its_store_partition_away() -> None:
    parts = StorePartitions([A, B], True)
    parts.ready(parts.assigned({(A, 0), (B, 0)})[0])
    assert parts.may_process((B, 0))
    assert parts.released({(A, 0)}) == {0}
    assert not parts.may_process((A, 0))


def test_records_not_to_be_processed_yet_are_read_again_from_the_first() -> None:
    parts = StorePartitions([A], True)
    parts.assigned({(A, 0), (A, 1)})
    assert parts.hold((A, 0), 40)  # the first: its partition is to be paused
    assert not parts.hold((A, 0), 41)
    assert parts.hold((A, 1), 7)
    assert parts.take_held({0}) == {(A, 0): 40}
    assert parts.take_held({0}) == {}
    parts.released(set())
    assert parts.take_held({1}) == {}  # revoked: its position is the new owner's business


def test_a_stateless_app_processes_whatever_it_owns() -> None:
    parts = StorePartitions([A, B], stateful=False)
    assert parts.may_process((A, 3))


def test_a_partition_count_change_is_refused_with_what_changed() -> None:
    check_counts({A: 6, B: 6}, {A: 6, B: 6})
    check_counts({A: 6}, {})  # the cluster could not say: not a change
    with pytest.raises(PartitionsChanged, match="payments from 6 to 8"):
        check_counts({A: 6, B: 6}, {A: 8, B: 6})
