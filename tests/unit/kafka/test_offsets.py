"""Lag and open-transaction arithmetic; asking again while partitions settle."""

from __future__ import annotations

import weakref
from types import SimpleNamespace
from typing import Any, ClassVar, cast

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException

from eos.kafka import offsets as offsets_module
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


class _Reader:
    """A stand-in consumer for partition ends: each instance answers offsets_for_times
    with its `answer` (an offset, or an error code raised as the whole call's)."""

    made: ClassVar[list[_Reader]] = []
    answers: ClassVar[list[int]] = []  # per client made; negative: a KafkaError code

    def __init__(self, config: dict[str, Any]) -> None:
        self.config, self.answer, self.closed = config, self.answers.pop(0), False
        self.made.append(self)

    def list_topics(self, _topic: str, timeout: float) -> None:
        pass  # the metadata refresh before each ask

    def offsets_for_times(self, wanted: list[Any], timeout: float) -> list[SimpleNamespace]:
        if self.answer < 0:
            raise KafkaException(KafkaError(self.answer, "no leader for the partition"))
        return [SimpleNamespace(topic=tp.topic, partition=tp.partition, offset=self.answer,
                                error=None) for tp in wanted]  # fmt: skip

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("gone", [KafkaError._NOENT, KafkaError._DESTROY_BROKER])
def test_a_partition_without_a_known_leader_is_asked_again_with_a_new_client(
    monkeypatch: pytest.MonkeyPatch, gone: int
) -> None:
    monkeypatch.setattr(offsets_module, "Consumer", _Reader)
    _Reader.made, _Reader.answers = [], [gone, 42]
    offsets = offsets_module.Offsets({"bootstrap.servers": "127.0.0.1:1"})
    assert offsets.high_watermarks([("t", 0)]) == {("t", 0): 42}
    assert len(_Reader.made) == 2 and _Reader.made[0].closed  # the stale view was dropped


def test_ends_are_read_at_the_isolation_level_asked_and_closed_with_the_reader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(offsets_module, "Consumer", _Reader)
    _Reader.made, _Reader.answers = [], [7, 9]
    offsets = offsets_module.Offsets({"bootstrap.servers": "127.0.0.1:1"})
    assert offsets.last_stable([("t", 0)]) == {("t", 0): 7}
    assert offsets.high_watermarks([("t", 0)]) == {("t", 0): 9}
    assert offsets.log_starts([("t", 0)]) == {("t", 0): 9}  # same reader as the HW
    levels = [r.config["isolation.level"] for r in _Reader.made]
    assert levels == ["read_committed", "read_uncommitted"]
    offsets.close()
    assert all(r.closed for r in _Reader.made)


class _Answers:
    """A consumer whose committed() gives the next of `answers`: per-partition results."""

    def __init__(self, *answers: list[SimpleNamespace]) -> None:
        self._answers = list(answers)

    def committed(self, _tps: object, timeout: float) -> list[SimpleNamespace]:
        return self._answers.pop(0)


def test_a_partition_answered_with_an_error_is_asked_again_never_read_as_none_committed() -> None:
    """UNSTABLE_OFFSET_COMMIT comes with no offset (-1001): taken as none committed, a
    recovery would rewind to auto.offset.reset and redo what was committed."""
    unstable = KafkaError(KafkaError.UNSTABLE_OFFSET_COMMIT)
    consumer = _Answers(
        [SimpleNamespace(topic="t", partition=0, offset=-1001, error=unstable)],
        [SimpleNamespace(topic="t", partition=0, offset=42, error=None)],
    )
    assert offsets_module.committed_positions(cast(Consumer, consumer), [("t", 0)]) == {
        ("t", 0): 42
    }


def test_close_lets_go_of_the_admin_client_and_a_later_call_says_it_is_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[weakref.ref[Any]] = []

    class Admin:
        def __init__(self, _config: Any) -> None:
            made.append(weakref.ref(self))

    monkeypatch.setattr(offsets_module, "AdminClient", Admin)
    reader = offsets_module.Offsets({"bootstrap.servers": "127.0.0.1:9"})
    assert made[0]() is not None
    reader.close()
    # Gone with its last reference: a client kept would reconnect to a stopped cluster.
    assert made[0]() is None
    with pytest.raises(RuntimeError, match="after close"):
        reader.partitions(["t"])
    with pytest.raises(RuntimeError, match="after close"):
        reader.committed("g", [("t", 0)])
