"""Deadlines the engine enforces itself, for calls that must not hang the process."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from confluent_kafka import Consumer, TopicPartition

from eos.engine.stats import EXIT_FATAL
from eos.kafka.offsets import TP

__all__ = ["Overdue", "Stopping", "call_within", "exit_if_overdue", "wait_in_group"]

log = logging.getLogger("eos.processor")
T = TypeVar("T")


class Stopping(Exception):
    """A stop was requested while work waited; nothing is left open by raising it."""


class Overdue(Exception):
    """A call did not return within its deadline; it may still be running."""

    def __init__(self, what: str, seconds: float) -> None:
        super().__init__(f"{what} did not return within {seconds:.0f}s")
        self.what = what


def call_within(
    fn: Callable[[], T],
    seconds: float,
    what: str,
    meanwhile: Callable[[], Iterator[None]] | None = None,
) -> T:
    """`fn()` on a worker thread; Overdue when it has not returned after `seconds`.

    The worker is a daemon thread: a call stuck inside the client stays stuck there,
    abandoned, without keeping the process from exiting. The caller must then stop using
    whatever object the call was made on (it may still change state).

    `meanwhile`: work for this thread while it waits, in steps (each `next` a short one),
    taken until the call returns or the work runs out. It must not touch what `fn` uses."""
    result: list[T] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def work() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=work, name=f"eos-{what}", daemon=True).start()
    left = seconds
    if meanwhile is not None:
        end = time.monotonic() + seconds
        try:
            for _step in meanwhile():
                if done.is_set() or time.monotonic() >= end:
                    break
                time.sleep(0)  # lets the worker take the GIL if its call is back
        except Exception:  # the work is optional; the call it fills in for is not
            log.exception("work done while waiting on %s failed; waiting without it", what)
        left = max(end - time.monotonic(), 0.0)
    if not done.wait(left):
        raise Overdue(what, seconds)
    if failure:
        raise failure[0]
    return result[0]


@contextlib.contextmanager
def exit_if_overdue(seconds: float, what: str) -> Iterator[None]:
    """Run the block; if it takes longer than `seconds`, log why and exit the process at
    once (exit 1). For steps whose hang would keep partitions from every other member:
    a process that is gone gives them up, one that hangs does not."""

    def overdue() -> None:
        log.error("%s took longer than %.0fs; exiting hard", what, seconds)
        os._exit(EXIT_FATAL)

    timer = threading.Timer(seconds, overdue)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def wait_in_group(consumer: Consumer, seconds: float, stop: threading.Event) -> set[TP]:
    """Wait without leaving the group: poll with fetching paused; Stopping on a stop.

    Polling serves rebalance callbacks, so a held batch learns of revoked partitions. A
    record fetched meanwhile (from a partition assigned during the wait) is sought back,
    so it is read again later rather than lost. Returns the partitions sought back.
    """
    deadline = time.monotonic() + seconds
    paused = consumer.assignment()
    consumer.pause(paused)
    sought: set[TP] = set()
    try:
        while time.monotonic() < deadline:
            if stop.is_set():
                raise Stopping
            msg = consumer.poll(min(0.2, max(deadline - time.monotonic(), 0)))
            if msg is not None and msg.error() is None:
                topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
                if topic is not None and partition is not None and offset is not None:
                    consumer.seek(TopicPartition(topic, partition, offset))
                    sought.add((topic, partition))
    finally:
        # Resume every partition paused here, revoked meanwhile or not: librdkafka keeps
        # a partition's pause across revoke and re-assignment, so one revoked during the
        # wait would come back paused and never be fetched again.
        held = {(tp.topic, tp.partition) for tp in paused}
        now = [tp for tp in consumer.assignment() if (tp.topic, tp.partition) not in held]
        consumer.resume([*paused, *now])
    return sought
