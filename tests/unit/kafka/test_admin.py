"""Topic creation on a settling cluster: asked again, and its own earlier attempt's topic
counted as created rather than as somebody else's."""

from __future__ import annotations

import time
from concurrent.futures import Future
from types import SimpleNamespace
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


def _topic(leaders: list[int]) -> SimpleNamespace:
    partitions = {i: SimpleNamespace(leader=leader, error=None) for i, leader in enumerate(leaders)}
    return SimpleNamespace(error=None, partitions=partitions)


class Admin:
    """Answers each create_topics call with the next row of errors per topic; its
    metadata serves every topic created so far with a leader, unless `views` (what
    successive list_topics calls see) says otherwise."""

    def __init__(
        self,
        answers: list[dict[str, int | None]],
        views: list[dict[str, SimpleNamespace]] | None = None,
    ) -> None:
        self.answers = answers
        self.asked: list[list[str]] = []
        self.views = views
        self.created: set[str] = set()
        self.looked = 0

    def create_topics(self, topics: list[NewTopic], **_: Any) -> dict[str, Future[None]]:
        self.asked.append([t.topic for t in topics])
        row = self.answers.pop(0)
        exists = (None, KafkaError.REQUEST_TIMED_OUT, KafkaError.TOPIC_ALREADY_EXISTS)
        self.created |= {t.topic for t in topics if row[t.topic] in exists}
        return {t.topic: _future(row[t.topic]) for t in topics}

    def list_topics(self, **_: Any) -> SimpleNamespace:
        self.looked += 1
        if self.views:
            return SimpleNamespace(topics=self.views.pop(0))
        return SimpleNamespace(topics={name: _topic([1]) for name in self.created})


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


def test_a_created_topic_is_returned_only_once_a_broker_serves_each_partition_with_a_leader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CreateTopics answers once the controller has the topic; a client starting at once
    would find it missing while a broker's metadata lags behind."""
    monkeypatch.setattr(time, "sleep", lambda _s: None)
    views = [{}, {"a": _topic([1, -1])}, {"a": _topic([1, 1])}]
    admin = Admin([{"a": None}], views)
    assert create_topics(admin, [NewTopic("a", 2, 1)], timeout=10) == ["a"]  # type: ignore[arg-type]
    assert admin.looked == 3
