"""Asking the cluster again while it settles: a coordinator loading or moving, a leader
being elected, a broker briefly out of reach (a cold or bouncing cluster)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from confluent_kafka import KafkaException

from eos.kafka.errors import is_settling, kafka_error

__all__ = ["settled"]

T = TypeVar("T")


def settled(ask: Callable[[], T], timeout: float) -> T:
    """`ask()`, asked again while the cluster is settling (a coordinator loading or
    moving, a leader being elected: a cold or bouncing broker), for up to `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return ask()
        except KafkaException as exc:
            if not is_settling(kafka_error(exc)) or time.monotonic() > deadline:
                raise
        except TimeoutError:  # a future not answered in time (a broker bouncing)
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)
