"""produce() waits for room in a full local queue, up to its deadline or wait."""

from __future__ import annotations

import time
from typing import Any, cast

import pytest

from eos.kafka.produce import Encoded, produce

RECORD = Encoded("t", b"k", b"v", [])


class FullFor:
    """A producer whose queue is full for its first `n` produce calls."""

    def __init__(self, n: int) -> None:
        self.left = n
        self.produced = 0

    def produce(self, *_args: Any, **_kwargs: Any) -> None:
        if self.left > 0:
            self.left -= 1
            raise BufferError("queue full")
        self.produced += 1

    def poll(self, timeout: float) -> int:
        time.sleep(timeout)  # as a real poll with nothing to serve
        return 0


def test_a_queue_that_frees_up_in_time_takes_the_record() -> None:
    producer = FullFor(3)
    produce(cast(Any, producer), RECORD, deadline=time.monotonic() + 30)
    assert producer.produced == 1
    producer = FullFor(3)
    produce(cast(Any, producer), RECORD, wait_s=30)
    assert producer.produced == 1


def test_past_the_deadline_the_full_queue_is_an_error() -> None:
    with pytest.raises(BufferError):
        produce(cast(Any, FullFor(1000)), RECORD, deadline=time.monotonic() + 0.2)
    with pytest.raises(BufferError):
        produce(cast(Any, FullFor(1000)), RECORD, wait_s=0.2)
