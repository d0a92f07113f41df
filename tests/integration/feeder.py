"""Numbered events into a topic, as much as asked or steadily on a thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from eos.serde.schemas import load_schema
from eos.testing.cluster import KafkaCluster
from tests.integration.engine.conftest import make_events

__all__ = ["Feeder"]


class Feeder:
    """Produces numbered events to a topic through one producer.

    Not `Pipeline.produce`: its serializer uses confluent-kafka's default subject
    strategy, which asks the registry for topic associations first, and the registry
    leaves about one such request in a hundred unanswered (no timeout: it hangs)."""

    def __init__(self, cluster: KafkaCluster, topic: str) -> None:
        self._topic = topic
        registry = SchemaRegistryClient(cluster.registry_config())
        self._serialize = AvroSerializer(
            registry,
            load_schema("event"),
            conf={"subject.name.strategy": topic_subject_name_strategy},
        )
        self._producer = Producer(cluster.client_config(acks="all", **{"enable.idempotence": True}))
        self.produced = 0
        self._lock = threading.Lock()

    def send(self, n: int, action: str = "ok") -> None:
        ctx = SerializationContext(self._topic, MessageField.VALUE)
        with self._lock:
            for event in make_events(n, start=self.produced, action=action):
                while True:
                    try:
                        self._producer.produce(
                            self._topic, key=event["account"], value=self._serialize(event, ctx)
                        )
                        break
                    except BufferError:
                        self._producer.poll(0.05)
            assert self._producer.flush(60) == 0, "input records left undelivered"
            self.produced += n

    @contextmanager
    def flowing(self, per_second: int = 250) -> Iterator[None]:
        """Input keeps arriving: a run frozen and thawed until it is caught inside a
        transaction never runs out of work (a run that did was never caught)."""
        stop = threading.Event()

        def feed() -> None:
            while not stop.wait(0.2):
                self.send(per_second // 5)

        thread = threading.Thread(target=feed, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def ids(self) -> set[str]:
        return {f"e{i}" for i in range(self.produced)}
