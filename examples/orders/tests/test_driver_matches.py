"""The test driver and the real processor, same input: same outputs, same dead letters
(headers aside from the failure's time and the instance), same state."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from confluent_kafka import Message
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from orders.app import build, contract
from orders.samples import sample_orders

from eos.config import EngineSettings
from eos.engine.records import Consumed
from eos.testing.apps import AppProcess
from eos.testing.checks import read_dead_letters
from eos.testing.cluster import KafkaCluster
from eos.testing.driver import DeadLetter, TestDriver
from eos.testing.helpers import produce_avro, read_committed
from eos.testing.topics import TopicSet

VARYING = {"eos.dlq.failed.at", "eos.dlq.instance"}


def test_the_driver_and_the_processor_agree(
    eos_cluster: KafkaCluster,
    order_topics: TopicSet,
    eos_app: Callable[..., AppProcess],
    monkeypatch: Any,
) -> None:
    topics = order_topics
    produce_avro(eos_cluster, topics["orders"], contract("order").schema_str, sample_orders(600))
    group = f"{topics['orders']}-app"
    names = {
        "ORDERS_ORDERS_TOPIC": topics["orders"],
        "ORDERS_PRICED_TOPIC": topics["priced"],
        "ORDERS_TOTALS_CHANGELOG": topics["totals"],
    }
    app = eos_app("orders.app:build", group_id=group, dlq_topic=topics["dlq"], **names)
    app.wait_caught_up(eos_cluster, group, [topics["orders"]])
    assert app.terminate() == 0

    for name, value in names.items():
        monkeypatch.setenv(name, value)
    inputs = [Consumed.from_message(m) for m in read_committed(eos_cluster, topics["orders"])]
    settings = EngineSettings(instance_id="driver", dlq_topic=topics["dlq"])
    # The inputs carry the real registry's schema ids: the driver reads them there.
    registry = SchemaRegistryClient(eos_cluster.registry_config())
    with TestDriver(build, settings, partitions=3, registry=registry) as driver:
        for record in inputs:
            driver.pipe_batch([record])
        decode = _decoder(eos_cluster)
        real = [
            (m.partition() or 0, m.key(), decode(m))
            for m in read_committed(eos_cluster, topics["priced"])
        ]
        ours = [(p.partition, p.key, p.value) for p in driver.output(topics["priced"])]
        assert sorted(real, key=_where) == sorted(ours, key=_where)
        assert len(ours) > 500

        real_dlq = [_letter(d) for d in read_dead_letters(eos_cluster, topics["dlq"])]
        ours_dlq = [_letter(d) for d in driver.dead_letters()]
        assert sorted(real_dlq, key=repr) == sorted(ours_dlq, key=repr)
        assert {d.reason for d in driver.dead_letters()} == {"PERMANENT", "INVALID_VALUE"}

        real_state = _state(read_committed(eos_cluster, topics["totals"]))
        assert real_state == driver.state("customer-totals")
        assert len(real_state) == 40  # a customer pays in one currency here


def _where(row: tuple[int, bytes | None, Any]) -> tuple[int, str]:
    return row[0], row[2]["order_id"]


def _letter(letter: DeadLetter) -> tuple[Any, ...]:
    kept = sorted((k, v) for k, v in letter.record.headers.items() if k not in VARYING)
    return letter.record.key, letter.record.raw, tuple(kept)


def _decoder(cluster: KafkaCluster) -> Callable[[Message], Any]:
    deserialize = AvroDeserializer(SchemaRegistryClient(cluster.registry_config()))
    return lambda m: deserialize(
        m.value(), SerializationContext(m.topic() or "", MessageField.VALUE)
    )


def _state(changelog: list[Message]) -> dict[tuple[int, str], Any]:
    """The changelog as compaction leaves it: (partition, key) -> last value."""
    out: dict[tuple[int, str], Any] = {}
    for m in changelog:
        key = (m.partition() or 0, (m.key() or b"").decode())
        value = m.value()
        if value is None:
            out.pop(key, None)
        else:
            out[key] = json.loads(value)
    return out
