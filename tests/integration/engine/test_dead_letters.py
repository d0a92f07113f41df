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
from tests.integration.engine.conftest import Pipeline, make_events


def _headers(msg: object) -> dict[str, str]:
    return {k: v.decode() for k, v in (msg.headers() or [])}  # type: ignore[attr-defined]


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

    dead = pipeline.dead_letters()
    by_key = {m.key(): m for m in dead}
    assert len(dead) == len(poison) + len(rejected)
    for key, (value, reason) in poison.items():
        msg = by_key[key]
        headers = _headers(msg)
        assert msg.value() == value, key  # original bytes, verbatim
        assert headers[h.H_ERROR_REASON] == reason, key
        assert headers[h.H_TOPIC] == pipeline.input
        assert int(headers[h.H_OFFSET]) >= 0
        assert headers[h.H_PARTITION] in {"0", "1", "2"}
        assert int(headers[h.H_TIMESTAMP]) > 0
        assert headers[h.H_ATTEMPTS] == "1"
        assert headers[h.H_INSTANCE] == settings.instance_id
        assert headers[h.H_FAILED_AT]
        assert "Traceback" in headers[h.H_ERROR_STACK]
        assert headers["trace"] == "t-1"  # the original headers are kept
    reject_reasons = [
        _headers(m)[h.H_ERROR_REASON]
        for m in dead
        if m.key() in {e["account"].encode() for e in rejected}
    ]
    assert reject_reasons.count("PERMANENT") == len(rejected)
