"""Ownership by generation and end-of-partition state, as plain data."""

from __future__ import annotations

from eos.engine.assignment import Assignment
from eos.engine.records import Consumed, Encoded
from eos.kafka.partitioner import partition_for


def _rec(partition: int, offset: int, topic: str = "in") -> Consumed:
    return Consumed(topic, partition, offset, 0, b"k", b"v", [])


def test_records_fetched_before_a_revoke_are_not_owned_after_it() -> None:
    a = Assignment()
    a.assign([("in", 0), ("in", 1)])
    a.fetched()
    batch = [_rec(0, 5), _rec(1, 7)]
    assert a.owned(batch) == batch
    a.release([("in", 1)])
    assert a.owned(batch) == [batch[0]]


def test_a_partition_given_back_after_the_fetch_does_not_own_the_held_records() -> None:
    a = Assignment()
    a.assign([("in", 0)])
    a.fetched()
    held = [_rec(0, 5)]
    a.release([("in", 0)])
    a.assign([("in", 0)])  # same partition, a new generation: restarts at its commit
    assert a.owned(held) == []
    a.fetched()
    assert a.owned(held) == held  # fetched again under the new generation


def test_release_returns_the_partition_numbers_no_input_still_holds() -> None:
    a = Assignment()
    a.assign([("payments", 0), ("credits", 0), ("payments", 1)])
    assert a.release([("payments", 0)]) == set()  # credits[0] still needs store partition 0
    assert a.release([("credits", 0), ("payments", 1)]) == {0, 1}


def test_caught_up_only_when_every_owned_partition_reached_its_end_and_nothing_came() -> None:
    a = Assignment()
    a.assign([("in", 0), ("in", 1)])
    a.reached_end(("in", 0))
    assert not a.caught_up(False)
    a.reached_end(("in", 1))
    assert not a.caught_up(True)
    assert a.caught_up(False)
    a.read_from(("in", 1))
    assert not a.caught_up(False)


def test_a_partition_sought_back_is_no_longer_at_its_end() -> None:
    # An end reported before a rewind (a recovery, a held partition resumed) lies behind
    # records to be read again: a run until caught up would stop without them.
    a = Assignment()
    a.assign([("in", 0), ("in", 1)])
    a.reached_end(("in", 0))
    a.reached_end(("in", 1))
    a.rewound([("in", 1)])
    assert not a.caught_up(False)
    a.reached_end(("in", 1))
    assert a.caught_up(False)


def test_writing_to_an_own_input_moves_its_partition_off_the_end() -> None:
    a = Assignment({"in"}, lambda _topic: 3)
    a.assign([("in", p) for p in range(3)])
    for p in range(3):
        a.reached_end(("in", p))
    key = b"account-7"
    a.wrote([Encoded("in", key, b"v", [])])
    assert not a.caught_up(False)
    a.reached_end(("in", partition_for(key, 3)))  # the one partition murmur2 picks
    assert a.caught_up(False)
    a.wrote([Encoded("out", key, b"v", [])])  # not an input
    assert a.caught_up(False)
    a.wrote([Encoded("in", None, b"v", [])])  # unkeyed: any
    assert not a.caught_up(False)
