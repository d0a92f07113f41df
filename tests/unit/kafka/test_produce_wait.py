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


class Recording:
    """A producer that keeps what each produce call was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def produce(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append((args, kwargs))


def _given(record: Encoded, on_delivery: Any = None) -> dict[str, Any]:
    producer = Recording()
    produce(cast(Any, producer), record, on_delivery)
    [(args, kwargs)] = producer.calls
    return {"topic": args[0], **kwargs}


def test_a_plain_record_is_given_as_topic_value_and_key() -> None:
    assert _given(RECORD) == {"topic": "t", "value": b"v", "key": b"k"}


def test_headers_a_partition_or_a_callback_are_given_with_everything() -> None:
    def cb(_err: Any, _msg: Any) -> None: ...

    everything = {"topic": "t", "value": b"v", "key": b"k", "headers": [], "partition": -1}
    assert _given(RECORD, cb) == {**everything, "on_delivery": cb}
    headed = Encoded("t", b"k", b"v", [("h", b"1")])
    assert _given(headed) == {**everything, "headers": [("h", b"1")], "on_delivery": None}
    placed = Encoded("t", b"k", b"v", [], 3)
    assert _given(placed) == {**everything, "partition": 3, "on_delivery": None}
