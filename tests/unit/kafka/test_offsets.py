"""Lag and open-transaction arithmetic; asking again while partitions settle."""

from __future__ import annotations

import weakref
from concurrent.futures import Future
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


class _Ends:
    def __init__(self, offset: int) -> None:
        self.offset = offset


class _Admin:
    """A stand-in admin client: each instance answers list_offsets with its `answer`."""

    made: ClassVar[list[_Admin]] = []
    answers: ClassVar[list[int | None]] = []  # per client made: None = "No leaders found"

    def __init__(self, _config: object) -> None:
        self.answer = self.answers.pop(0)
        self.made.append(self)

    def list_offsets(self, wanted: dict[Any, Any], **_: Any) -> dict[Any, Future[_Ends]]:
        out: dict[Any, Future[_Ends]] = {}
        for tp in wanted:
            future: Future[_Ends] = Future()
            if self.answer is None:
                error = KafkaError(KafkaError._NOENT, "Failed to query partition leaders")
                future.set_exception(KafkaException(error))
            else:
                future.set_result(_Ends(self.answer))
            out[tp] = future
        return out


def test_no_partition_leader_is_asked_again_with_a_new_admin_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(offsets_module, "AdminClient", _Admin)
    _Admin.made, _Admin.answers = [], [None, 42]
    offsets = offsets_module.Offsets({"bootstrap.servers": "127.0.0.1:1"})
    assert offsets.high_watermarks([("t", 0)]) == {("t", 0): 42}
    assert len(_Admin.made) == 2  # the first client's stale view was dropped


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
