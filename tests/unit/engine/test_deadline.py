"""call_within: a call bounded by a deadline, with work for the waiting thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from eos.engine.deadline import Overdue, call_within


def test_work_is_done_while_the_call_waits_and_stops_when_it_returns() -> None:
    back = threading.Event()
    steps: list[int] = []

    def work() -> Iterator[None]:
        for i in range(1000):
            steps.append(i)
            if i == 2:
                back.set()  # the call returns once three steps are done
            time.sleep(0.01)
            yield

    assert call_within(lambda: back.wait(10) and "done", 10, "call", work) == "done"
    assert 3 <= len(steps) < 1000


def test_work_that_runs_out_leaves_the_thread_waiting_for_the_call() -> None:
    steps: list[int] = []

    def work() -> Iterator[None]:
        steps.append(0)
        yield

    def slow() -> int:
        time.sleep(0.3)
        return 7

    assert call_within(slow, 10, "call", work) == 7
    assert steps == [0]


def test_a_call_past_its_deadline_is_overdue_however_much_work_there_is() -> None:
    def endless() -> Iterator[None]:
        while True:
            time.sleep(0.01)
            yield

    started = time.monotonic()
    with pytest.raises(Overdue, match="stuck did not return within 0s"):
        call_within(lambda: time.sleep(5), 0.3, "stuck", endless)
    assert time.monotonic() - started < 2


def test_an_error_of_the_call_reaches_the_caller_after_the_work() -> None:
    def work() -> Iterator[None]:
        yield

    def fails() -> None:
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        call_within(fails, 10, "call", work)


def test_work_that_fails_leaves_the_call_to_finish(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> Iterator[None]:
        yield
        raise RuntimeError("a bug in the work")

    def slow() -> str:
        time.sleep(0.2)
        return "committed"

    assert call_within(slow, 10, "commit_transaction", broken) == "committed"
    assert "while waiting on commit_transaction failed" in caplog.text
