"""Processor._process: retry, isolate, abort and bisect, with a fake consumer and committer.

No broker: the committer records what each transaction would have committed, and fails
the way the test says; the consumer only serves the calls a held batch makes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

from eos.config import EngineSettings
from eos.engine import dlq as h
from eos.engine.api import InputRecord, OutputRecord, PermanentError, TransientError
from eos.engine.batch import BatchRunner
from eos.engine.breaker import BreakerTripped, CircuitBreaker
from eos.engine.processor import Processor
from eos.engine.records import Consumed, Encoded
from eos.engine.recovery import Recovered
from eos.engine.redact import Redactor
from eos.engine.state import StateStore
from eos.engine.stats import advice
from eos.kafka.errors import ErrorClass, TransactionError
from tests.unit.stores import make_ready

IN, OUT, DLQ = "in", "out", "in.dlq"
POISON = b"poison"


class FakeConsumer:
    """What _process, _wait and _owned use; poll never fetches anything, but may run
    `on_poll` (a rebalance, say) the way librdkafka serves callbacks inside poll."""

    def __init__(self, partitions: set[tuple[str, int]]) -> None:
        self.partitions = [TopicPartition(t, p) for t, p in sorted(partitions)]
        self.paused = 0
        self.resumed = 0
        self.on_poll: Callable[[], None] | None = None
        self.member = "m-1"  # the group member id it has now

    def memberid(self) -> str:
        return self.member

    def assignment(self) -> list[TopicPartition]:
        return self.partitions

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        pass

    def incremental_unassign(self, partitions: list[TopicPartition]) -> None:
        pass

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused += 1

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.resumed += 1

    def poll(self, timeout: float) -> None:
        if self.on_poll is not None:
            self.on_poll()
        return None

    def seek(self, partition: TopicPartition) -> None:
        raise AssertionError("nothing was fetched, so nothing is sought back")

    def consumer_group_metadata(self) -> object:
        return object()

    def close(self) -> None:
        pass


class FakeCommitter:
    """Commits unless `fails(outputs)` returns an error class, then fails with `code` (by
    default an error about a record: too large); records every call."""

    def __init__(
        self,
        fails: Callable[[Sequence[Encoded]], ErrorClass | None],
        code: int = KafkaError.MSG_SIZE_TOO_LARGE,
    ) -> None:
        self.fails = fails
        self.code = code
        self.commits: list[tuple[list[tuple[str, int, int]], list[Encoded]]] = []
        self.failed = 0
        self.aborts = 0
        self.open = False
        self.meanwhile: Callable[[], Iterator[None]] | None = None

    def init(self) -> None:
        pass

    def commit(self, offsets: Sequence[TopicPartition], outputs: Sequence[Encoded]) -> None:
        assert not self.open, "a failed transaction was not aborted before the next"
        for _step in self.meanwhile() if self.meanwhile else ():
            pass  # a commit waits: the processor's work for the wait is done
        error_class = self.fails(outputs)
        if error_class is not None:
            self.failed += 1
            self.open = True
            raise TransactionError(
                "commit_transaction", KafkaError(self.code, "injected"), error_class
            )
        self.commits.append(
            ([(tp.topic, tp.partition, tp.offset) for tp in offsets], list(outputs))
        )

    def abort(self) -> None:
        self.aborts += 1
        self.open = False

    def delivered(self) -> dict[tuple[str, int], int]:
        return {}

    def recover(self) -> None:
        self.open = False

    def close(self) -> None:
        pass

    def committed_outputs(self) -> list[Encoded]:
        return [o for _, outputs in self.commits for o in outputs if o[0] == OUT]

    def dead_letters(self) -> list[tuple[list[tuple[str, int, int]], Encoded]]:
        return [(offs, o) for offs, outputs in self.commits for o in outputs if o[0] == DLQ]


def transform(record: InputRecord) -> list[OutputRecord]:
    value = record.value
    if value == b"crash":
        raise RuntimeError("bug")
    if value == b"reject":
        raise PermanentError("invalid")
    return [OutputRecord(OUT, record.key, b"out:" + value)]


def _records(values: list[bytes]) -> list[Consumed]:
    """Round-robin over two partitions, offsets rising per partition."""
    return [
        Consumed(IN, i % 2, 100 + i // 2, 1_700_000_000_000, b"k%d" % i, v, [("trace", b"t")])
        for i, v in enumerate(values)
    ]


def _processor(
    committer: FakeCommitter,
    records: list[Consumed],
    run: Callable[[InputRecord], list[OutputRecord]] = transform,
    **overrides: Any,
) -> tuple[Processor, FakeConsumer]:
    settings = EngineSettings(
        input_topics=[IN],
        dlq_topic=DLQ,
        instance_id="unit",
        backoff_initial_ms=1,
        backoff_max_ms=2,
        isolate_after_aborts=2,
        retry_max_attempts=5,
        **overrides,
    )
    assigned = {r.tp for r in records}
    consumer = FakeConsumer(assigned)
    runner = BatchRunner(run, {IN: None}, {}, settings.retry_max_attempts)
    processor = Processor(
        settings,
        runner,
        cast(Consumer, consumer),
        committer,
        CircuitBreaker.from_settings(settings),
        Redactor(settings.secrets()),
    )
    processor.assignment.assign(assigned)
    processor.assignment.fetched()
    return processor, consumer


def _poisonous(outputs: Sequence[Encoded]) -> ErrorClass | None:
    bad = any(o[0] == OUT and o[2] == b"out:" + POISON for o in outputs)
    return ErrorClass.ABORTABLE if bad else None


def _headers(encoded: Encoded) -> dict[str, str]:
    return {k: v.decode() for k, v in encoded[3]}


@pytest.mark.parametrize("poison_at", [0, 5, 12])
def test_a_batch_that_keeps_aborting_is_bisected_until_the_culprit_is_dead_lettered(
    poison_at: int,
) -> None:
    values = [b"v%d" % i for i in range(13)]
    values[poison_at] = POISON
    records = _records(values)
    committer = FakeCommitter(_poisonous)
    processor, consumer = _processor(committer, records)

    processor._process(records)

    good = [r for r in records if r.value != POISON]
    assert [tuple(o[:4]) for o in committer.committed_outputs()] == [
        (OUT, r.key, b"out:" + (r.value or b""), []) for r in good
    ]
    [(_offsets, dead)] = committer.dead_letters()
    culprit = records[poison_at]
    # The DLQ record is committed alone, with the culprit's offset: a DLQ-only commit.
    dlq_only = [c for c in committer.commits if any(o[0] == DLQ for o in c[1])]
    assert dlq_only == [([(IN, culprit.partition, culprit.offset + 1)], [dead])]
    assert (dead[1], dead[2]) == (culprit.key, culprit.value)  # original bytes
    headers = _headers(dead)
    assert headers[h.H_ERROR_REASON] == "TRANSACTION_FAILED"
    assert headers[h.H_OFFSET] == str(culprit.offset)
    assert headers[h.H_PARTITION] == str(culprit.partition)
    assert headers["trace"] == "t"
    # Every failed transaction was aborted; every record's offset was committed once.
    assert committer.aborts == committer.failed > 0
    committed = sorted(o for offs, _ in committer.commits for o in offs)
    last = {(IN, p): max(r.offset for r in records if r.partition == p) for p in (0, 1)}
    for (topic, partition), offset in last.items():
        assert (topic, partition, offset + 1) in committed
    assert processor.stats.dead_lettered == 1
    assert processor.stats.outputs == len(good)
    assert processor.stats.records == len(records)
    assert consumer.paused == consumer.resumed > 0  # backoff waited with fetching paused


def test_offsets_never_go_backwards_while_bisecting() -> None:
    values = [b"v%d" % i for i in range(16)]
    values[9] = POISON
    committer = FakeCommitter(_poisonous)
    processor, _ = _processor(committer, _records(values))
    processor._process(_records(values))
    high: dict[tuple[str, int], int] = {}
    for offsets, _ in committer.commits:
        for topic, partition, offset in offsets:
            assert offset > high.get((topic, partition), -1)
            high[(topic, partition)] = offset


def test_a_batch_that_aborts_once_is_redone_whole_without_bisection() -> None:
    failures = iter([ErrorClass.ABORTABLE])
    committer = FakeCommitter(lambda _outputs: next(failures, None))
    records = _records([b"a", b"b", b"c"])
    processor, _ = _processor(committer, records)
    processor._process(records)
    assert committer.aborts == 1
    assert len(committer.commits) == 1
    assert [o[2] for o in committer.committed_outputs()] == [b"out:a", b"out:b", b"out:c"]
    assert committer.dead_letters() == []


def test_a_fatal_commit_error_stops_at_once_without_abort_or_split() -> None:
    committer = FakeCommitter(lambda _outputs: ErrorClass.FATAL)
    records = _records([b"a", b"b", b"c", b"d"])
    processor, _ = _processor(committer, records)
    with pytest.raises(TransactionError) as info:
        processor._process(records)
    assert info.value.error_class is ErrorClass.FATAL
    assert committer.failed == 1
    assert committer.aborts == 0
    assert committer.commits == []


def test_a_consumer_in_a_fatal_state_stops_the_processor_rather_than_idle() -> None:
    # librdkafka reports its consumer's fatal state (a static member fenced after its
    # coordinator moved) as an _FATAL event whose own fatal flag is not set.
    processor, _ = _processor(FakeCommitter(lambda _outputs: None), [])
    fenced = KafkaError(KafkaError._FATAL, "Static consumer fenced by other consumer")
    assert not fenced.fatal()
    with pytest.raises(TransactionError) as info:
        processor._consumer_error(fenced, (IN, 0))
    assert info.value.error_class is ErrorClass.FATAL
    assert "consumer cannot continue" in advice(info.value)


def test_an_unexpected_exception_is_isolated_in_the_same_transaction() -> None:
    committer = FakeCommitter(lambda _outputs: None)
    records = _records([b"a", b"b", b"crash", b"d", b"e"])
    processor, _ = _processor(committer, records)
    processor._process(records)
    [(offsets, outputs)] = committer.commits
    assert [o[2] for o in outputs if o[0] == OUT] == [b"out:a", b"out:b", b"out:d", b"out:e"]
    [dead] = [o for o in outputs if o[0] == DLQ]
    assert dead[2] == b"crash"
    assert _headers(dead)[h.H_ERROR_REASON] == "UNEXPECTED"
    assert _headers(dead)[h.H_ERROR_CLASS] == "builtins.RuntimeError"
    assert offsets == [(IN, 0, 103), (IN, 1, 102)]


def test_a_transient_failure_retries_the_batch_and_commits_once() -> None:
    seen: dict[bytes, int] = {}

    def flaky(record: InputRecord) -> list[OutputRecord]:
        seen[record.value] = seen.get(record.value, 0) + 1
        if record.value == b"flaky" and seen[record.value] <= 2:
            raise TransientError("dependency down")
        return transform(record)

    committer = FakeCommitter(lambda _outputs: None)
    records = _records([b"a", b"flaky", b"c"])
    processor, consumer = _processor(committer, records, flaky)
    processor._process(records)
    assert processor.stats.retries == 2
    assert consumer.paused == consumer.resumed == 2
    [(_offsets, outputs)] = committer.commits
    assert [o[2] for o in outputs] == [b"out:a", b"out:flaky", b"out:c"]


def test_records_of_a_revoked_partition_are_dropped_before_the_retry() -> None:
    committer = FakeCommitter(lambda _outputs: None)
    records = _records([b"a", b"b", b"c", b"d"])
    processor, _ = _processor(committer, records)
    calls = 0

    def revoke_on_first_failure(record: InputRecord) -> list[OutputRecord]:
        nonlocal calls
        calls += 1
        if calls == 1:
            processor.assignment.release([(IN, 1)])  # as _on_revoke would during the wait
            raise TransientError("dependency down")
        return transform(record)

    processor.runner = BatchRunner(revoke_on_first_failure, {IN: None}, {}, 5)
    processor._process(records)
    [(offsets, outputs)] = committer.commits
    assert offsets == [(IN, 0, 102)]
    assert [o[2] for o in outputs] == [b"out:a", b"out:c"]


def test_an_abortable_failure_of_the_dlq_only_commit_is_aborted_and_retried() -> None:
    dlq_failures = [ErrorClass.ABORTABLE]

    def fails(outputs: Sequence[Encoded]) -> ErrorClass | None:
        if any(o[0] == DLQ for o in outputs) and dlq_failures:
            return dlq_failures.pop()
        return _poisonous(outputs)

    committer = FakeCommitter(fails)
    records = _records([b"a", POISON, b"c"])
    processor, _ = _processor(committer, records)
    processor._process(records)
    assert not committer.open
    assert [o[2] for o in committer.committed_outputs()] == [b"out:a", b"out:c"]
    [(_offsets, dead)] = committer.dead_letters()
    assert dead[2] == POISON


def test_an_aborted_batch_does_not_count_twice_in_the_breaker() -> None:
    failures = iter([ErrorClass.ABORTABLE])
    committer = FakeCommitter(lambda _outputs: next(failures, None))
    records = _records([b"reject"] * 3)
    processor, _ = _processor(committer, records, breaker_max_consecutive=5)
    processor._process(records)  # 3 failures in a row, below the limit of 5
    assert committer.aborts == 1
    assert len(committer.dead_letters()) == 3


def test_the_breaker_stops_a_batch_before_it_commits() -> None:
    committer = FakeCommitter(lambda _outputs: None)
    records = _records([b"reject"] * 5)
    processor, _ = _processor(committer, records, breaker_max_consecutive=5)
    with pytest.raises(BreakerTripped):
        processor._process(records)
    assert committer.commits == []


def test_an_abort_not_about_a_record_is_retried_and_never_dead_letters() -> None:
    failures = iter([ErrorClass.ABORTABLE] * 5)  # well past isolate_after_aborts (2)
    committer = FakeCommitter(
        lambda _outputs: next(failures, None), code=KafkaError.COORDINATOR_NOT_AVAILABLE
    )
    records = _records([b"a", b"b", b"c"])
    processor, _ = _processor(committer, records)
    processor._process(records)
    assert committer.aborts == 5
    assert committer.dead_letters() == []
    [(_offsets, outputs)] = committer.commits
    assert [o[2] for o in outputs] == [b"out:a", b"out:b", b"out:c"]


def test_a_partition_revoked_and_given_back_during_a_backoff_drops_its_held_records() -> None:
    # Given back, its position restarts at the committed offset: committing the held
    # records too would produce them twice.
    committer = FakeCommitter(lambda _outputs: None)
    records = _records([b"a", b"b", b"flaky", b"d"])
    processor, consumer = _processor(committer, records)
    back = [TopicPartition(IN, 0)]

    def rebalance() -> None:
        consumer.on_poll = None
        processor._on_revoke(cast(Consumer, consumer), back)
        processor.rebalance.assigned(cast(Consumer, consumer), back)

    consumer.on_poll = rebalance
    tries = 0

    def flaky_once(record: InputRecord) -> list[OutputRecord]:
        nonlocal tries
        if record.value == b"flaky" and tries == 0:
            tries += 1
            raise TransientError("dependency down")
        return transform(record)

    processor.runner = BatchRunner(flaky_once, {IN: None}, {}, 5)
    processor._process(records)
    [(offsets, outputs)] = committer.commits
    assert offsets == [(IN, 1, 102)]
    assert [o[2] for o in outputs] == [b"out:b", b"out:d"]


def test_a_record_the_dlq_refuses_too_stops_the_processor_instead_of_looping() -> None:
    committer = FakeCommitter(lambda outputs: ErrorClass.ABORTABLE if outputs else None)
    records = _records([b"a"])
    processor, _ = _processor(committer, records)
    with pytest.raises(TransactionError, match="the DLQ topic refuses it too") as info:
        processor._process(records)
    assert info.value.error_class is ErrorClass.FATAL
    assert committer.commits == []
    assert not committer.open


def test_the_state_writes_of_a_dead_lettered_record_are_not_applied() -> None:
    store = StateStore("seen", "seen.changelog")
    make_ready(store, [0, 1])

    def remember(record: InputRecord) -> list[OutputRecord]:
        store.put(record.partition, (record.key or b"").decode(), record.offset)
        return transform(record)

    committer = FakeCommitter(_poisonous)
    records = _records([b"a", POISON, b"c"])
    processor, _ = _processor(committer, records)
    processor.stores = [store]
    processor.runner = BatchRunner(remember, {IN: None}, {}, 5, stores=[store])
    processor._process(records)
    [(_offsets, dead)] = committer.dead_letters()
    assert dead[2] == POISON
    assert store.get(1, "k1") is None  # the poison record's write
    assert store.get(0, "k0") == 100 and store.get(0, "k2") == 101
    changelog = [o for _, outs in committer.commits for o in outs if o[0] == "seen.changelog"]
    assert sorted(o[1] or b"" for o in changelog) == [b"k0", b"k2"]


def test_a_state_value_json_cannot_hold_fails_only_its_record() -> None:
    store = StateStore("seen", "seen.changelog")
    make_ready(store, [0, 1])

    def remember(record: InputRecord) -> list[OutputRecord]:
        value: object = {1, 2} if record.value == b"set" else "ok"
        store.put(record.partition, (record.key or b"").decode(), value)
        return transform(record)

    committer = FakeCommitter(lambda _outputs: None)
    records = _records([b"a", b"set", b"c"])
    processor, _ = _processor(committer, records)
    processor.stores = [store]
    processor.runner = BatchRunner(remember, {IN: None}, {}, 5, stores=[store])
    processor._process(records)
    [(_offsets, outputs)] = committer.commits
    assert [o[2] for o in outputs if o[0] == OUT] == [b"out:a", b"out:c"]
    [dead] = [o for o in outputs if o[0] == DLQ]
    assert dead[2] == b"set"
    assert "is not JSON" in _headers(dead)[h.H_ERROR_MESSAGE]


def test_the_breaker_message_is_scrubbed_of_secrets() -> None:
    def leaky(record: InputRecord) -> list[OutputRecord]:
        raise PermanentError("login as eos:hunter2 refused")

    committer = FakeCommitter(lambda _outputs: None)
    records = _records([b"x"] * 5)
    processor, _ = _processor(
        committer,
        records,
        leaky,
        breaker_max_consecutive=5,
        client_overrides={"sasl.password": "hunter2"},
    )
    with pytest.raises(BreakerTripped) as info:
        processor._process(records)
    assert "hunter2" not in str(info.value)
    assert "login as eos:" in str(info.value)


def test_a_recovery_takes_its_partitions_off_their_end() -> None:
    # Rewound to the committed offsets, the batch in doubt is read again: the ends
    # reported after it no longer hold, or a run until caught up would stop without it.
    records = _records([b"a", b"b"])
    processor, _consumer = _processor(FakeCommitter(lambda _o: None), records)
    for tp in processor.assignment.partitions:
        processor.assignment.reached_end(tp)

    def recovered(_batch: list[Consumed], owned: bool = False) -> None:
        raise Recovered

    processor._process = recovered  # type: ignore[method-assign,assignment]
    processor._process_batch(records)
    assert not processor.assignment.caught_up(False)
