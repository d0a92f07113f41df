"""Exactly-once under faults: SIGKILL, zombies, rebalances and graceful stops.

Every processor here is a real `eos run events` subprocess against the real broker; the
outputs are checked under read_committed: each input id exactly once, nothing missing.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import fastavro
from confluent_kafka import Message, TopicPartition

from eos.serde.schemas import contract
from eos.serde.wire import split
from eos.testing.checks import assert_exactly_once, assert_no_hanging_transactions, by_field
from eos.testing.helpers import committed_offsets, read_committed
from tests.integration.engine.conftest import Pipeline
from tests.integration.feeder import Feeder
from tests.integration.processes import EndOffsets, Spawned, wait_until

# Small batches: many short transactions, so a run lasts long enough to be interrupted.
SMALL_BATCHES = ("--batch-max-records", "100")
# The broker's minimum: a SIGKILLed member is dropped from the group (and its partitions
# handed to the restarted instance) sooner.
SHORT_SESSION = ("--session-timeout-ms", "6000")
# An event that fails transiently is retried after 1-2, 2-4, 2-4, ... s.
SLOW_BACKOFF = ("--backoff-initial-ms", "2000", "--backoff-max-ms", "4000")
ENRICHED = contract("enriched_event").parsed
EVENT = contract("event").parsed


class Instance(Spawned):
    """A spawned `eos run events`."""

    def __init__(
        self,
        pipeline: Pipeline,
        name: str,
        *extra: str,
        until_caught_up: bool = False,
        env: dict[str, str] | None = None,
    ):
        proc = pipeline.spawn(name, *extra, until_caught_up=until_caught_up, env=env)
        super().__init__(name, proc)


class Progress(EndOffsets):
    """The output topic's end offsets."""

    def __init__(self, pipeline: Pipeline) -> None:
        super().__init__(
            pipeline.cluster.client_config(),
            [TopicPartition(pipeline.output, p) for p in range(pipeline.partitions)],
        )

    def reach(self, stable: int, timeout: float, instance: Instance) -> None:
        self.wait(lambda: self.stable() >= stable, timeout, instance)

    def wait(self, predicate: Callable[[], bool], timeout: float, instance: Instance) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if instance.proc.poll() is not None:
                raise AssertionError(f"{instance.name} exited early\n{instance.tail()}")
            time.sleep(0.005)
        raise AssertionError(f"timed out after {timeout}s\n{instance.tail()}")


def _decode(value: bytes | None, schema: Any) -> dict[str, object]:
    _schema_id, payload = split(value)
    record = fastavro.schemaless_reader(payload, schema, None)
    assert isinstance(record, dict)
    return record


def _ids(messages: Iterable[Message]) -> Counter[str]:
    return Counter(str(_decode(m.value(), ENRICHED)["id"]) for m in messages)


def _processed_by(messages: Iterable[Message]) -> Counter[str]:
    return Counter(str(_decode(m.value(), ENRICHED)["processed_by"]) for m in messages)


def _inputs_by_partition(pipeline: Pipeline) -> dict[int, list[str]]:
    """Each input partition's event ids in offset order (the input is not transactional,
    so offset n is the (n+1)th record)."""
    out: dict[int, list[tuple[int, str]]] = {p: [] for p in range(pipeline.partitions)}
    for m in read_committed(pipeline.cluster, pipeline.input):
        out[m.partition() or 0].append((m.offset() or 0, str(_decode(m.value(), EVENT)["id"])))
    return {p: [i for _, i in sorted(recs)] for p, recs in out.items()}


def _assert_exactly_once(pipeline: Pipeline, expected: set[str]) -> list[Message]:
    """The kit's checks (every input once across the outputs and the DLQ, nothing
    aborted left unredone, no transaction open), and every id sent made it to the
    output, none to the DLQ."""
    cluster = pipeline.cluster
    assert_exactly_once(
        cluster,
        pipeline.input,
        [pipeline.output],
        dlq_topic=pipeline.dlq,
        key=by_field(cluster, "id"),
    )
    assert_no_hanging_transactions(cluster, [pipeline.output, pipeline.dlq])
    outputs = pipeline.outputs(timeout=30)
    missing = expected - set(_ids(outputs))
    assert not missing, f"{len(missing)} ids never output, e.g. {_some(missing)}"
    assert pipeline.dead_letters(timeout=30) == []
    return outputs


def _assert_offsets_at_end(pipeline: Pipeline) -> None:
    sizes = {p: len(ids) for p, ids in _inputs_by_partition(pipeline).items()}
    offsets = committed_offsets(pipeline.cluster, pipeline.group, pipeline.input, 3)
    assert offsets == sizes


def _some(items: Iterable[object]) -> list[object]:
    return sorted(items, key=str)[:5]


def test_repeated_sigkill_mid_transaction_loses_and_duplicates_nothing(
    pipeline: Pipeline,
) -> None:
    feeder, progress = Feeder(pipeline.cluster, pipeline.input), Progress(pipeline)
    name = f"kill-{uuid.uuid4().hex[:6]}"
    kills = 4
    for _ in range(kills):
        # A backlog for each run: sent all up front, the input ran out before the last
        # runs reached their mark.
        feeder.send(5_000)
        run = Instance(pipeline, name, *SMALL_BATCHES, *SHORT_SESSION)
        # Let this run commit transactions of its own (its restart fenced the zombie
        # before), then kill it while a transaction is open.
        progress.reach(progress.stable() + 1500, 60, run)
        with feeder.flowing():
            run.kill_when(progress.open_transaction, timeout=90)
        assert run.proc.returncode == -signal.SIGKILL
    committed_before_final = progress.stable()

    final = Instance(pipeline, name, *SMALL_BATCHES, *SHORT_SESSION, until_caught_up=True)
    assert final.wait(90) == 0, final.tail()

    outputs = _assert_exactly_once(pipeline, feeder.ids())
    _assert_offsets_at_end(pipeline)
    # The kills fell mid-stream: the runs before committed part of the input, the
    # final run the rest; and each kill left a transaction open, with records in the
    # log, which the restart aborted (read_uncommitted still sees those records).
    assert 0 < final.processed() < feeder.produced, final.tail()
    assert committed_before_final > 0
    everything = read_committed(pipeline.cluster, pipeline.output, 30, "read_uncommitted")
    assert len(everything) - len(outputs) >= kills


def test_a_second_instance_with_the_same_transactional_id_fences_the_first(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """The same EOS_INSTANCE_ID on two hosts (on one host the second is refused at
    start): the newer one fences the older, which finds its twin in the group and stops
    as the zombie it is."""
    feeder, progress = Feeder(pipeline.cluster, pipeline.input), Progress(pipeline)
    feeder.send(30_000)
    name = f"twin-{uuid.uuid4().hex[:6]}"
    a = Instance(pipeline, name, *SMALL_BATCHES)
    progress.reach(1000, 60, a)

    other_host = {"EOS_STATE_DIR": str(tmp_path / "other-host")}
    b = Instance(pipeline, name, *SMALL_BATCHES, until_caught_up=True, env=other_host)
    assert a.wait(60) != 0, a.tail()
    stopping = a.logged("stopping:")
    assert stopping, a.tail()
    assert "fenced" in stopping[-1].lower() and "transactional.id" in stopping[-1], stopping[-1]
    assert b.wait(90) == 0, b.tail()
    assert not b.logged("stopping:"), b.tail()
    # A was fenced mid-stream: each did part of the work.
    assert 0 < a.processed() < feeder.produced, a.tail()
    assert a.processed() + b.processed() == feeder.produced, b.tail()

    _assert_exactly_once(pipeline, feeder.ids())
    _assert_offsets_at_end(pipeline)


def test_an_instance_joins_mid_stream_then_leaves(pipeline: Pipeline) -> None:
    """B joins while A holds a batch for a retry (its fetching paused) and takes some of
    A's partitions; B leaves and A takes them back, and must fetch them again."""
    feeder = Feeder(pipeline.cluster, pipeline.input)
    stop_producing = threading.Event()
    producer_errors: list[BaseException] = []

    def produce_continuously() -> None:
        try:
            while not stop_producing.wait(0.2):
                feeder.send(400)
        except BaseException as exc:  # reported by the test thread
            producer_errors.append(exc)

    feeder.send(2000)
    producer = threading.Thread(target=produce_continuously, daemon=True)
    topic = pipeline.input
    tag = uuid.uuid4().hex[:6]
    # Slow backoff: an event failing transiently 4 times holds A's batch for 7-14 s.
    a = Instance(pipeline, f"a-{tag}", *SMALL_BATCHES, *SLOW_BACKOFF)
    try:
        producer.start()
        wait_until(lambda: bool(a.partitions("assigned", topic)), 30, "A assigned", a)
        feeder.send(1, action="flaky:4")
        wait_until(lambda: bool(a.logged("transient failure")), 30, "A to hold a batch", a)

        b = Instance(pipeline, f"b-{tag}", *SMALL_BATCHES)
        wait_until(lambda: bool(b.partitions("assigned", topic)), 60, "B assigned", a, b)
        to_b = b.partitions("assigned", topic)
        assert to_b <= a.partitions("revoked", topic), a.tail()

        def b_committed() -> bool:
            return _processed_by(pipeline.outputs(timeout=10))[b.name] > 0

        wait_until(b_committed, 30, "B to commit outputs", a, b)

        b.signal(signal.SIGTERM)
        assert b.wait(30) == 0, b.tail()
        assert to_b <= b.partitions("revoked", topic), b.tail()
        # A takes B's partitions back (its first "assigned" line is the initial one).
        wait_until(
            lambda: to_b <= a.partitions("assigned", topic, skip=1),
            30,
            "A to get B's partitions back",
            a,
        )
        time.sleep(1)  # A processes part of the stream alone again
    finally:
        stop_producing.set()
        producer.join(60)
    assert not producer.is_alive() and not producer_errors, producer_errors

    def caught_up() -> bool:
        offsets = committed_offsets(pipeline.cluster, pipeline.group, topic, 3)
        return sum(offsets.values()) == feeder.produced

    wait_until(caught_up, 60, "A to commit every input (B's partitions again too)", a)
    a.signal(signal.SIGTERM)
    assert a.wait(30) == 0, a.tail()

    outputs = _assert_exactly_once(pipeline, feeder.ids())
    _assert_offsets_at_end(pipeline)
    by = _processed_by(outputs)
    assert by[a.name] > 0 and by[b.name] > 0, f"{by}\n{a.tail()}\n{b.tail()}"
    # A gave the partitions up while it held its batch: between two of its retries, or
    # the revoke took the flaky event away and cut the retries short.
    held = [i for i, line in enumerate(a.lines) if "transient failure" in line]
    revoked = next(i for i, line in enumerate(a.lines) if "revoked " in line)
    assert held[0] < revoked and (revoked < held[-1] or len(held) < 4), a.tail(80)


def test_sigterm_finishes_the_batch_commits_and_leaves_no_open_transaction(
    pipeline: Pipeline,
) -> None:
    feeder, progress = Feeder(pipeline.cluster, pipeline.input), Progress(pipeline)
    feeder.send(20_000)
    name = f"term-{uuid.uuid4().hex[:6]}"
    run = Instance(pipeline, name, *SMALL_BATCHES)
    progress.reach(3000, 60, run)

    run.signal(signal.SIGTERM)
    started = time.monotonic()
    assert run.wait(30) == 0, run.tail()
    assert time.monotonic() - started < 30
    assert run.logged("received SIGTERM"), run.tail()

    offsets = committed_offsets(pipeline.cluster, pipeline.group, pipeline.input, 3)
    assert 0 < sum(max(o, 0) for o in offsets.values()) < feeder.produced, offsets
    # No transaction left open: the last stable offset is the high watermark, so a
    # read_committed read ends at once and sees what a read_uncommitted read sees.
    assert not progress.open_transaction()
    committed = pipeline.outputs(timeout=10)
    uncommitted = read_committed(pipeline.cluster, pipeline.output, 10, "read_uncommitted")
    assert len(committed) == len(uncommitted)
    # The outputs are exactly the inputs before the committed offsets.
    inputs = _inputs_by_partition(pipeline)
    consumed = {i for p, ids in inputs.items() for i in ids[: max(offsets[p], 0)]}
    ids = _ids(committed)
    assert set(ids) == consumed and max(ids.values()) == 1

    rest = Instance(pipeline, name, *SMALL_BATCHES, until_caught_up=True)
    assert rest.wait(60) == 0, rest.tail()
    _assert_exactly_once(pipeline, feeder.ids())
    _assert_offsets_at_end(pipeline)
