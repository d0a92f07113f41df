"""Topic creation on a settling cluster: asked again, and its own earlier attempt's topic
counted as created rather than as somebody else's."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from eos.kafka.admin import create_topics


def _future(error: int | None) -> Future[None]:
    future: Future[None] = Future()
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(KafkaException(KafkaError(error)))
    return future


class Admin:
    """Answers each create_topics call with the next row of errors per topic."""

    def __init__(self, answers: list[dict[str, int | None]]) -> None:
        self.answers = answers
        self.asked: list[list[str]] = []

    def create_topics(self, topics: list[NewTopic], **_: Any) -> dict[str, Future[None]]:
        self.asked.append([t.topic for t in topics])
        row = self.answers.pop(0)
        return {t.topic: _future(row[t.topic]) for t in topics}


def test_a_loading_controller_is_asked_again_and_its_created_topic_counts() -> None:
    admin = Admin(
        [
            {"a": None, "b": KafkaError.REQUEST_TIMED_OUT},
            {"b": KafkaError.TOPIC_ALREADY_EXISTS},  # created by the timed-out attempt
        ]
    )
    created = create_topics(admin, [NewTopic("a", 1, 1), NewTopic("b", 1, 1)], timeout=10)  # type: ignore[arg-type]
    assert created == ["a", "b"]
    assert admin.asked == [["a", "b"], ["b"]]


def test_somebody_elses_topic_is_an_error_at_once() -> None:
    admin = Admin([{"a": KafkaError.TOPIC_ALREADY_EXISTS}])
    with pytest.raises(KafkaException) as raised:
        create_topics(admin, [NewTopic("a", 1, 1)], timeout=10)  # type: ignore[arg-type]
    assert raised.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS
    assert len(admin.asked) == 1


def test_a_non_settling_error_is_not_retried() -> None:
    admin = Admin([{"a": KafkaError.INVALID_REPLICATION_FACTOR}])
    with pytest.raises(KafkaException):
        create_topics(admin, [NewTopic("a", 1, 3)], timeout=10)  # type: ignore[arg-type]
    assert len(admin.asked) == 1
