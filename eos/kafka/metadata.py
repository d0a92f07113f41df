"""What the cluster says about topics, cached: existence and partition counts."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient

__all__ = ["Client", "PartitionCounts", "TopicCache", "current_counts", "topic_ids", "twin_member"]

Client = Consumer | AdminClient


class TopicCache:
    """Whether a topic exists. A yes is trusted for `known_ttl_s` (a topic deleted
    meanwhile is noticed within that time, or at once after `forget()`), a no for
    `missing_ttl_s` (a topic created meanwhile is found soon)."""

    def __init__(
        self,
        client: Client,
        known_ttl_s: float = 60.0,
        missing_ttl_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = 10.0,
    ) -> None:
        self._client = client
        self.missing_ttl_s = missing_ttl_s
        self._ttl = {True: known_ttl_s, False: missing_ttl_s}
        self._clock = clock
        self._timeout = timeout
        self._seen: dict[str, tuple[bool, float]] = {}

    def __call__(self, topic: str) -> bool:
        now = self._clock()
        cached = self._seen.get(topic)
        if cached is not None and now - cached[1] < self._ttl[cached[0]]:
            return cached[0]
        meta: Any = self._client.list_topics(topic, timeout=self._timeout).topics.get(topic)
        exists = meta is not None and meta.error is None
        self._seen[topic] = (exists, now)
        return exists

    def forget(self) -> None:
        """Ask again next time (a produce said a topic is gone)."""
        self._seen.clear()


class PartitionCounts:
    """A topic's partition count, asked of the cluster once per topic."""

    def __init__(self, client: Client, timeout: float = 10.0) -> None:
        self._client = client
        self._timeout = timeout
        self._counts: dict[str, int] = {}

    def __call__(self, topic: str) -> int:
        count = self._counts.get(topic)
        if count is None:
            meta = self._client.list_topics(topic, timeout=self._timeout)
            count = self._counts[topic] = len(meta.topics[topic].partitions)
        return count


def twin_member(
    admin: AdminClient,
    group: str,
    client_id: str,
    mine: Collection[str],
    timeout: float = 10.0,
) -> str | None:
    """Another live member of `group` with our client.id (our instance id), described
    ("member M on host H"), or None. Nobody else should ever have it. `mine`: every
    member id this process's consumer has had: after its session timed out (a broker
    bounce) it rejoins under a new id while the group still lists the old one."""
    future = admin.describe_consumer_groups([group], request_timeout=timeout)[group]
    for member in future.result(timeout=timeout).members or []:
        if member.client_id == client_id and member.member_id not in mine:
            return f"member {member.member_id} on host {member.host}"
    return None


def current_counts(client: Client, topics: Iterable[str], timeout: float = 10.0) -> dict[str, int]:
    """Each topic's partition count as the cluster says now; a topic the cluster cannot
    describe at the moment (a broker settling) is left out."""
    out: dict[str, int] = {}
    for topic in topics:
        try:
            meta: Any = client.list_topics(topic, timeout=timeout).topics.get(topic)
        except KafkaException:
            continue
        if meta is not None and meta.error is None and meta.partitions:
            out[topic] = len(meta.partitions)
    return out


def topic_ids(admin: AdminClient, topics: Iterable[str], timeout: float = 30.0) -> dict[str, str]:
    """Each topic's id (a topic deleted and created again gets a new one); a topic whose
    id cannot be had now is left out."""
    names = list(topics)
    if not names:
        return {}
    out: dict[str, str] = {}
    futures = admin.describe_topics(TopicCollection(names), request_timeout=timeout)
    for name, future in futures.items():
        try:
            out[name] = str(future.result(timeout=timeout).topic_id)
        except (KafkaException, TimeoutError):  # unknown for now: the store checks less
            continue
    return out
