"""TransactionalCommitter._call: how long a retriable error is retried, per step."""

from __future__ import annotations

import threading
import time
from typing import Any, cast

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from eos.engine import transaction
from eos.engine.transaction import ProducerLost, TransactionalCommitter
from eos.kafka.errors import ErrorClass, TransactionError


class Flaky:
    """Raises a retriable timeout `failures` times, then returns "done"."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "timed out", retriable=True))
        return "done"


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    return slept


def _committer() -> TransactionalCommitter:
    return TransactionalCommitter(lambda: cast(Producer, object()), cast(Consumer, object()), 60.0)


def test_a_commit_that_times_out_is_retried_past_any_budget(
    pauses: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transaction, "RETRY_BUDGET_S", 0.0)
    fn = Flaky(failures=12)
    assert _committer()._call("commit_transaction", fn, budget=None) == "done"
    assert fn.calls == 13
    assert pauses[:3] == [0.2, 0.4, 0.8]  # growing pauses ...
    assert max(pauses) == transaction.RETRY_PAUSE_S[1]  # ... up to a bound


def test_other_steps_give_up_after_their_budget_and_abort(pauses: list[float]) -> None:
    fn: Any = Flaky(failures=10**6)
    with pytest.raises(TransactionError) as info:
        _committer()._call("send_offsets_to_transaction", fn, budget=0.0)
    assert info.value.error_class is ErrorClass.ABORTABLE
    assert fn.calls == 1


def test_a_commit_still_failing_when_the_transaction_time_is_up_loses_the_producer(
    pauses: list[float],
) -> None:
    """Never aborted (it may have committed): the producer is replaced and its successor
    settles the outcome."""
    fn: Any = Flaky(failures=10**6)
    with pytest.raises(ProducerLost) as info:
        _committer()._call("commit_transaction", fn, budget=0.0)
    assert info.value.step == "commit_transaction"


class Stuck:
    """A producer whose send_offsets_to_transaction never answers (librdkafka #5511)."""

    def __init__(self) -> None:
        self.released = threading.Event()

    def begin_transaction(self) -> None:
        pass

    def poll(self, _timeout: float) -> int:
        return 0

    def send_offsets_to_transaction(self, *_args: object) -> None:
        self.released.wait(60)


class Group:
    def consumer_group_metadata(self) -> object:
        return object()


def test_send_offsets_that_never_answers_loses_the_producer_long_before_the_transaction_times_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its own bound, not the transaction's (an hour here): nothing was asked to commit,
    so giving up is safe, and the successor aborts the transaction at once."""
    monkeypatch.setattr(transaction, "SEND_OFFSETS_S", 0.2)
    stuck = Stuck()
    committer = TransactionalCommitter(
        lambda: cast(Producer, stuck), cast(Consumer, Group()), transaction_timeout_s=3600.0
    )
    committer._producer = cast(Producer, stuck)
    started = time.monotonic()
    try:
        with pytest.raises(ProducerLost) as info:
            committer.commit([], [])
    finally:
        stuck.released.set()
    assert info.value.step == "send_offsets_to_transaction"
    assert time.monotonic() - started < 5
