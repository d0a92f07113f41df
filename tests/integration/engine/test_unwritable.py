"""Records that cannot be written where they should go still end as one DLQ record each,
and the processor goes on."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from eos.engine import dlq as h
from eos.kafka.metadata import TopicCache
from eos.testing.helpers import create_topic
from tests.integration.engine.conftest import Pipeline, make_events, stop, wait_for

BIG = 1_040_000


def _headers(msg: Any) -> dict[str, str]:
    raw = msg.headers() or []
    return {k: v.decode("utf-8", "replace") for k, v in raw}


def test_an_input_too_large_for_the_dlq_is_dead_lettered_cut_with_its_size_and_digest(
    pipeline: Pipeline,
) -> None:
    # The broker takes it into the input topic; the DLQ (and the producer) would not.
    topic = create_topic(pipeline.cluster, "big-in", 3, config={"max.message.bytes": str(2 * BIG)})
    pipeline.input = topic
    big = b"\xff" + bytes(range(256)) * (BIG // 256)
    producer = Producer(
        {"bootstrap.servers": pipeline.cluster.bootstrap_servers, "message.max.bytes": 2 * BIG}
    )
    producer.produce(topic, key=b"big", value=big)
    assert producer.flush(30) == 0
    proc = pipeline.spawn("big")
    pipeline.produce(make_events(10))
    wait_for(lambda: len(pipeline.outputs()) == 10, 60, "the good records' outputs")
    wait_for(lambda: len(pipeline.dead_letters()) == 1, 60, "the big record's dead letter")
    code, out = stop(proc)
    assert code == 0, out

    [dead] = pipeline.dead_letters()
    headers = _headers(dead)
    assert headers[h.H_ERROR_REASON] == "NOT_WIRE_FORMAT"
    assert headers[h.H_VALUE_TRUNCATED] == "true"
    assert headers[h.H_VALUE_SIZE] == str(len(big))
    assert headers[h.H_VALUE_SHA256] == hashlib.sha256(big).hexdigest()
    value = dead.value() or b""
    assert 0 < len(value) < h.DLQ_MAX_BYTES and big.startswith(value)


def test_a_record_aimed_at_a_deleted_topic_is_dead_lettered_and_the_processor_goes_on(
    pipeline: Pipeline,
) -> None:
    # A short transaction: a record to a deleted topic times out with it.
    proc = pipeline.spawn("deleted", "--transaction-timeout-ms", "15000")
    pipeline.produce(make_events(5))
    wait_for(lambda: len(pipeline.outputs()) == 5, 60, "outputs before the deletion")

    admin = AdminClient({"bootstrap.servers": pipeline.cluster.bootstrap_servers})
    admin.delete_topics([pipeline.output], operation_timeout=30)[pipeline.output].result(60)
    wait_for(
        lambda: pipeline.output not in admin.list_topics(timeout=10).topics, 30, "the deletion"
    )
    pipeline.produce(make_events(1, start=50))
    wait_for(lambda: len(pipeline.dead_letters()) == 1, 120, "the dead letter")
    assert proc.poll() is None, "the processor stopped"

    # The topic comes back; the processor goes on writing to it.
    admin.create_topics([NewTopic(pipeline.output, 3, 1)])[pipeline.output].result(60)
    time.sleep(TopicCache(admin).missing_ttl_s + 1)  # a missing topic is asked again after this
    pipeline.produce(make_events(3, start=60))
    try:
        wait_for(lambda: len(pipeline.outputs()) == 3, 120, "outputs to the recreated topic")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{stop(proc)[1][-4000:]}") from None
    code, out = stop(proc)
    assert code == 0, out
    [dead] = pipeline.dead_letters()
    headers = _headers(dead)
    assert headers[h.H_ERROR_REASON] in ("UNKNOWN_TOPIC", "TRANSACTION_FAILED"), headers
    assert pipeline.output in headers[h.H_ERROR_MESSAGE]
