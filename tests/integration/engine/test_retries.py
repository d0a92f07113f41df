"""Transient failures are retried, poison is isolated, the breaker stops a flood of
garbage, and dead letters can be replayed to their topic exactly once. Real broker."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from typing import Any, cast

import fastavro
from confluent_kafka import Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from eos.engine import dlq as h
from eos.engine.app import build_processor
from eos.engine.processor import Processor
from eos.engine.stats import EXIT_BREAKER, EXIT_OK
from eos.examples.events import build
from eos.serde.schemas import contract, load_schema
from eos.serde.wire import split
from eos.testing.helpers import committed_offsets, read_committed
from tests.integration.engine.conftest import Pipeline, make_events

ENRICHED = contract("enriched_event").parsed


def _run(pipeline: Pipeline, **overrides: Any) -> tuple[int, Processor]:
    settings = pipeline.settings(**overrides)
    processor = build_processor(settings, build(settings), until_caught_up=True)
    return processor.run(), processor


def _ids(messages: Iterable[Message]) -> Counter[str]:
    """Input event ids of the enriched outputs, with how often each was written."""
    out: Counter[str] = Counter()
    for m in messages:
        _schema_id, payload = split(m.value())
        value: Any = fastavro.schemaless_reader(payload, ENRICHED)
        out[value["id"]] += 1
    return out


def _headers(msg: Message) -> dict[str, str]:
    raw: Any = msg.headers() or []
    return {k: v.decode() for k, v in raw}


def test_a_transient_failure_is_retried_and_each_output_written_once(pipeline: Pipeline) -> None:
    ok = make_events(20)
    flaky = make_events(3, start=100, action="flaky:2")  # fail twice, then succeed
    pipeline.produce(ok[:10] + flaky + ok[10:])

    code, processor = _run(pipeline, retry_max_attempts=5)

    assert code == EXIT_OK
    assert _ids(pipeline.outputs()) == Counter({e["id"]: 1 for e in ok + flaky})
    assert pipeline.dead_letters() == []
    assert processor.stats.retries == 2 * len(flaky)  # they really failed, twice each


def test_a_record_still_failing_after_max_attempts_is_dead_lettered(pipeline: Pipeline) -> None:
    ok = make_events(20)
    [stuck] = make_events(1, start=500, action="flaky:10")
    pipeline.produce([*ok[:10], stuck, *ok[10:]])

    code, processor = _run(pipeline, retry_max_attempts=3)

    assert code == EXIT_OK
    assert _ids(pipeline.outputs()) == Counter({e["id"]: 1 for e in ok})
    [dead] = pipeline.dead_letters()
    headers = _headers(dead)
    assert headers[h.H_ERROR_REASON] == "TRANSIENT_EXHAUSTED"
    assert headers[h.H_ATTEMPTS] == "3"
    assert headers[h.H_ERROR_CLASS] == "eos.errors.TransientError"
    assert "flaky dependency for e500" in headers[h.H_ERROR_MESSAGE]
    [original] = [
        m
        for m in read_committed(pipeline.cluster, pipeline.input)
        if m.partition() == int(headers[h.H_PARTITION]) and m.offset() == int(headers[h.H_OFFSET])
    ]
    assert (dead.key(), dead.value()) == (original.key(), original.value())
    assert dead.key() == stuck["account"].encode()
    assert processor.stats.retries == 2  # attempts 1 and 2 retried, attempt 3 dead-letters


def test_an_unexpected_exception_dead_letters_only_that_record_of_its_batch(
    pipeline: Pipeline,
) -> None:
    ok = make_events(15)
    [crash] = make_events(1, start=700, action="crash")
    events = [*ok[:7], crash, *ok[7:]]
    pipeline.produce(events)

    # The whole input in one consume() call: it returns once it holds every record plus
    # the end-of-partition event of each partition (until_caught_up asks for those).
    size = len(events) + pipeline.partitions
    code, processor = _run(pipeline, batch_max_records=size, batch_max_ms=2000)

    assert code == EXIT_OK
    assert processor.stats.records == len(events)
    assert processor.stats.transactions == 1  # one batch: the culprit was isolated in it
    assert _ids(pipeline.outputs()) == Counter({e["id"]: 1 for e in ok})
    [dead] = pipeline.dead_letters()
    headers = _headers(dead)
    assert headers[h.H_ERROR_REASON] == "UNEXPECTED"
    assert headers[h.H_ERROR_CLASS] == "builtins.RuntimeError"
    assert "bug triggered by event e700" in headers[h.H_ERROR_MESSAGE]
    assert headers[h.H_ATTEMPTS] == "1"
    assert dead.key() == crash["account"].encode()


def test_the_breaker_stops_a_flood_of_garbage_instead_of_dead_lettering_it(
    pipeline: Pipeline,
) -> None:
    garbage = 500
    producer = Producer({"bootstrap.servers": pipeline.cluster.bootstrap_servers})
    for i in range(garbage):
        producer.produce(pipeline.input, key=b"g%d" % i, value=b"not avro at all %d" % i)
    assert producer.flush(30) == 0

    code, processor = _run(
        pipeline,
        batch_max_records=20,
        breaker_max_consecutive=50,
        breaker_window=100,
        breaker_min_records=100,
    )

    assert code == EXIT_BREAKER
    dead = pipeline.dead_letters()
    # Batches of <= 20 commit until the one that would make 50 in a row; that one is not.
    assert 0 < len(dead) < 50 < garbage
    assert processor.stats.dead_lettered == len(dead)
    assert {_headers(m)[h.H_ERROR_REASON] for m in dead} == {"NOT_WIRE_FORMAT"}
    assert pipeline.outputs() == []
    # The group's offsets moved exactly past what was dead-lettered, and no further.
    last: dict[int, int] = {}
    for m in dead:
        partition, offset = int(_headers(m)[h.H_PARTITION]), int(_headers(m)[h.H_OFFSET])
        last[partition] = max(offset, last.get(partition, -1))
    committed = committed_offsets(pipeline.cluster, pipeline.group, pipeline.input, 3)
    for partition in range(3):
        if partition in last:
            assert committed[partition] == last[partition] + 1, partition
        else:
            assert committed[partition] < 0, partition  # nothing committed
    assert sum(max(o, 0) for o in committed.values()) == len(dead)


def _produce_with_headers(
    pipeline: Pipeline, events: list[dict[str, Any]], headers: list[tuple[str, bytes]]
) -> None:
    # Topic-name strategy, stated, and a timeout: the default strategy first asks the
    # registry for topic associations, which it sometimes leaves unanswered (a hang).
    registry = SchemaRegistryClient({"url": pipeline.cluster.schema_registry_url, "timeout": 10})
    serialize = AvroSerializer(
        registry, load_schema("event"), conf={"subject.name.strategy": topic_subject_name_strategy}
    )
    producer = Producer({"bootstrap.servers": pipeline.cluster.bootstrap_servers})
    ctx = SerializationContext(pipeline.input, MessageField.VALUE)
    for e in events:
        producer.produce(
            pipeline.input, key=e["account"], value=serialize(e, ctx), headers=cast(Any, headers)
        )
    assert producer.flush(30) == 0


def _create_exact_topic(pipeline: Pipeline, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": pipeline.cluster.bootstrap_servers})
    admin.create_topics([NewTopic(name, 1, 1)], operation_timeout=30)[name].result(timeout=60)


def _replay(pipeline: Pipeline) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "eos",
            "dlq",
            "replay",
            "--bootstrap-servers",
            pipeline.cluster.bootstrap_servers,
            "--schema-registry-url",
            pipeline.cluster.schema_registry_url,
            "--group-id",
            pipeline.group,
            "--dlq-topic",
            pipeline.dlq,
            # Unique per test: a shared transactional.id would fence other replays.
            "--transactional-id-prefix",
            pipeline.group,
            "--instance-id",
            "replayer",
            "--batch-max-ms",
            "50",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_dlq_replay_republishes_the_original_records_exactly_once(pipeline: Pipeline) -> None:
    ok = make_events(10)
    rejected = make_events(3, start=300, action="reject")
    pipeline.produce(ok)
    _produce_with_headers(pipeline, rejected, [("origin", b"upstream-1")])
    code, _ = _run(pipeline)
    assert code == EXIT_OK
    dead = pipeline.dead_letters()
    assert len(dead) == len(rejected)
    inputs_before = read_committed(pipeline.cluster, pipeline.input)
    end_before = Counter(m.partition() for m in inputs_before)  # offsets start at 0
    _create_exact_topic(pipeline, f"{pipeline.dlq}.replay-failed")

    first = _replay(pipeline)
    assert first.returncode == 0, first.stdout + first.stderr

    inputs = read_committed(pipeline.cluster, pipeline.input)
    replayed = [m for m in inputs if (m.offset() or 0) >= end_before[m.partition()]]
    assert len(inputs) == len(inputs_before) + len(rejected)
    assert sorted((m.key(), m.value()) for m in replayed) == sorted(
        (m.key(), m.value()) for m in dead
    )
    originals = [m for m in inputs_before if _headers(m).get("origin") == "upstream-1"]
    assert sorted((m.key(), m.value()) for m in replayed) == sorted(
        (m.key(), m.value()) for m in originals
    )
    for m in replayed:
        headers = _headers(m)
        assert not [k for k in headers if k.startswith(h.PREFIX)], headers
        assert headers["origin"] == "upstream-1"  # the original headers came back
    assert read_committed(pipeline.cluster, f"{pipeline.dlq}.replay-failed") == []

    second = _replay(pipeline)
    assert second.returncode == 0, second.stdout + second.stderr
    assert len(read_committed(pipeline.cluster, pipeline.input)) == len(inputs)
