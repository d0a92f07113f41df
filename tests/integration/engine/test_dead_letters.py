"""Poison records land in the DLQ exactly once with their reason and original bytes."""

from __future__ import annotations

import io

import fastavro
from confluent_kafka import Producer

from eos.engine import dlq as h
from eos.engine.app import build_processor
from eos.examples.events import build
from eos.serde.schemas import contract
from eos.serde.wire import HEADER_SIZE, frame
from eos.testing.checks import assert_exactly_once, by_field, read_dead_letters
from tests.integration.engine.conftest import Pipeline, make_events


def _valid_bytes(pipeline: Pipeline, event: dict[str, object]) -> bytes:
    """A correctly encoded event, to corrupt on purpose."""
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

    registry = SchemaRegistryClient({"url": pipeline.cluster.schema_registry_url, "timeout": 10})
    schema = contract("event")
    schema_id = registry.register_schema(
        f"{pipeline.input}-value", Schema(schema.schema_str, "AVRO")
    )
    buf = io.BytesIO()
    buf.write(frame(schema_id))
    fastavro.schemaless_writer(buf, schema.parsed, event)
    return buf.getvalue()


def test_each_kind_of_poison_goes_to_the_dlq_with_its_reason(pipeline: Pipeline) -> None:
    good = make_events(20)
    pipeline.produce(good[:10])
    valid = _valid_bytes(pipeline, make_events(1, start=900)[0])
    negative = _valid_bytes(pipeline, {**make_events(1, start=901)[0], "amount": -5})
    poison = {
        b"no-magic": (b"plain text, not avro", "NOT_WIRE_FORMAT"),
        b"unknown-id": (frame(987_654) + valid[HEADER_SIZE:], "UNKNOWN_SCHEMA"),
        b"truncated": (valid[: len(valid) // 2], "MALFORMED_AVRO"),
        b"trailing": (valid + b"\x01\x02", "MALFORMED_AVRO"),
        b"invalid": (negative, "INVALID_VALUE"),
    }
    producer = Producer({"bootstrap.servers": pipeline.cluster.bootstrap_servers})
    for key, (value, _reason) in poison.items():
        producer.produce(pipeline.input, key=key, value=value, headers=[("trace", b"t-1")])
    producer.flush(30)
    rejected = make_events(2, start=500, action="reject")
    pipeline.produce(rejected + good[10:])

    settings = pipeline.settings()
    assert build_processor(settings, build(settings), until_caught_up=True).run() == 0

    outputs = pipeline.outputs()
    assert sorted(m.key() for m in outputs) == sorted(e["account"].encode() for e in good)
    assert len(outputs) == len(good)
    # Every input once across the output and the DLQ: an event by its id, a record that
    # is not an event by its key.
    event_id = by_field(pipeline.cluster, "id")
    assert_exactly_once(
        pipeline.cluster,
        pipeline.input,
        [pipeline.output],
        dlq_topic=pipeline.dlq,
        key=lambda rec: event_id(rec) or rec.key_str,
    )

    dead = read_dead_letters(pipeline.cluster, pipeline.dlq)
    by_key = {d.record.key: d for d in dead}
    assert len(dead) == len(poison) + len(rejected)
    for key, (value, reason) in poison.items():
        letter = by_key[key]
        headers = letter.headers
        assert letter.record.raw == value, key  # original bytes, verbatim
        assert letter.reason == reason, key
        topic, partition, offset = letter.source
        assert topic == pipeline.input
        assert offset >= 0
        assert partition in {0, 1, 2}
        assert int(headers[h.H_TIMESTAMP]) > 0
        assert headers[h.H_ATTEMPTS] == "1"
        assert headers[h.H_INSTANCE] == settings.instance_id
        assert headers[h.H_FAILED_AT]
        assert "Traceback" in headers[h.H_ERROR_STACK]
        assert headers["trace"] == "t-1"  # the original headers are kept
    rejected_keys = {e["account"].encode() for e in rejected}
    reject_reasons = [d.reason for d in dead if d.record.key in rejected_keys]
    assert reject_reasons.count("PERMANENT") == len(rejected)
