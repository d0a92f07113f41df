"""The run loop: consume a batch, process it, commit it; survive what can be survived.

No transaction is ever open while the consumer is polled. Rebalance callbacks only run
inside poll/consume, so when a partition is revoked, every batch that read from it has
either committed (its outputs and offsets in one transaction) or not begun; a batch
held for a retry drops the revoked partitions' records before it is retried. Nothing
is produced for a partition after it is gone.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType

from confluent_kafka import Consumer, KafkaError, TopicPartition

from eos.config import EngineSettings, Mode
from eos.engine.backoff import backoff_s
from eos.engine.batch import (
    BatchResult,
    BatchRunner,
    RecordKey,
    RecordTransient,
    RecordUnexpected,
    key_of,
)
from eos.engine.breaker import BreakerTripped, CircuitBreaker
from eos.engine.dlq import Failure, Redactor, dlq_record
from eos.engine.records import Consumed, Encoded, next_offsets
from eos.engine.state import StateStore
from eos.engine.transaction import AtLeastOnceCommitter, Committer, TransactionalCommitter
from eos.kafka.clients import consumer_config, make_consumer, make_producer
from eos.kafka.errors import ErrorClass, TransactionError, is_record_error
from eos.kafka.partitioner import partition_for

log = logging.getLogger("eos.processor")

EXIT_OK = 0
EXIT_FATAL = 1
EXIT_BREAKER = 3


class Stopping(Exception):
    """A stop was requested while a batch waited for a retry."""


@dataclass
class Stats:
    started: float = field(default_factory=time.monotonic)
    records: int = 0
    outputs: int = 0
    dead_lettered: int = 0
    transactions: int = 0
    aborts: int = 0
    retries: int = 0

    first_batch_at: float | None = None
    last_commit_at: float | None = None

    def rate(self) -> float:
        return self.records / max(time.monotonic() - self.started, 1e-9)

    def summary(self) -> dict[str, float | int]:
        """Totals, and the busy time from the first batch to the last commit."""
        busy = (self.last_commit_at or 0.0) - (self.first_batch_at or 0.0)
        return {
            "records": self.records,
            "outputs": self.outputs,
            "dead_lettered": self.dead_lettered,
            "transactions": self.transactions,
            "aborts": self.aborts,
            "retries": self.retries,
            "busy_seconds": round(busy, 3),
        }


class Processor:
    def __init__(
        self,
        settings: EngineSettings,
        runner: BatchRunner,
        consumer: Consumer | None = None,
        committer_factory: Callable[[Consumer], Committer] | None = None,
        until_caught_up: bool = False,
        stores: Sequence[StateStore] = (),
    ) -> None:
        self.settings = settings
        self.stores = stores
        self.runner = runner
        self.consumer = consumer or make_consumer(settings, partition_eof=until_caught_up)
        if committer_factory is not None:
            self.committer = committer_factory(self.consumer)
        elif settings.mode is Mode.EXACTLY_ONCE:
            self.committer = TransactionalCommitter(make_producer(settings), self.consumer)
        else:
            self.committer = AtLeastOnceCommitter(make_producer(settings), self.consumer)
        self.breaker = CircuitBreaker(
            settings.breaker_window,
            settings.breaker_max_dlq_ratio,
            settings.breaker_min_records,
            settings.breaker_max_consecutive,
        )
        self.redact = Redactor(settings.secrets())
        self.stats = Stats()
        self.until_caught_up = until_caught_up
        self._assigned: set[tuple[str, int]] = set()
        # Bumped on every assignment of a partition; a held batch remembers the value it was
        # fetched under, so a partition revoked and given back meanwhile (whose position was
        # reset to the committed offset) does not get the held records committed twice.
        self._generation: dict[tuple[str, int], int] = {}
        self._held: dict[tuple[str, int], int] = {}
        self._stop = threading.Event()
        self._last_report = time.monotonic()
        self._at_end: set[tuple[str, int]] = set()  # partitions that reported EOF
        self._partition_counts: dict[str, int] = {}

    # -- lifecycle ------------------------------------------------------------------------

    def request_stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        if signum is not None:
            log.info(
                "received %s: finishing the batch in flight, then stopping",
                signal.Signals(signum).name,
            )
        self._stop.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def run(self) -> int:
        """Process until stopped; returns the exit code."""
        code = EXIT_OK
        try:
            self.committer.init()
            self.consumer.subscribe(
                self.settings.input_topics,
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_lost,
            )
            log.info(
                "processing %s as group %s, instance %s (%s)",
                ",".join(self.settings.input_topics),
                self.settings.group_id,
                self.settings.instance_id,
                self.settings.mode.value,
            )
            while not self._stop.is_set():
                batch = self._consume()
                if batch:
                    self.stats.first_batch_at = self.stats.first_batch_at or time.monotonic()
                    self._process(batch)
                self._report()
                if self.until_caught_up and self._caught_up(bool(batch)):
                    log.info("caught up with all assigned partitions; stopping")
                    break
        except Stopping:
            pass
        except BreakerTripped as exc:
            log.error("circuit breaker tripped: %s", exc)
            code = EXIT_BREAKER
        except TransactionError as exc:
            log.error("stopping: %s. %s", exc, _advice(exc))
            code = EXIT_FATAL
        except BaseException:
            code = EXIT_FATAL  # the caller reports it; the shutdown must not say "exit 0"
            raise
        finally:
            code = self._shutdown(code)
        return code

    def _shutdown(self, code: int) -> int:
        watchdog = threading.Timer(
            self.settings.shutdown_timeout_s, _overdue, args=(self.settings.shutdown_timeout_s,)
        )
        watchdog.daemon = True
        watchdog.start()
        # Each step on its own: a failing abort must not keep the consumer in the group.
        steps = [self.committer.close] if code == EXIT_OK else []
        steps.append(self.consumer.close)  # leaves the group so partitions move at once
        try:
            for close in steps:
                try:
                    close()
                except Exception as exc:  # already stopping; say why, keep the code honest
                    log.error("error while shutting down: %s", self.redact(str(exc)))
                    code = code or EXIT_FATAL
        finally:
            watchdog.cancel()
        self._report(force=True)
        log.info("stopped (exit %d)", code)
        return code

    # -- rebalance callbacks (run inside consume/poll, never during a transaction) --------

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("assigned %s", _names(partitions))
        # State first: no record of these partitions is returned before this returns.
        for store in self.stores:
            store.assigned(
                {p.partition for p in partitions},
                consumer_config(self.settings),
                self._restore_timeout(),
            )
        for p in partitions:
            tp = (p.topic, p.partition)
            self._generation[tp] = self._generation.get(tp, 0) + 1
            self._assigned.add(tp)

    def _restore_timeout(self) -> float:
        """Long enough for the coordinator to abort a dead owner's open transaction, short
        enough that the member is not dropped for not polling."""
        s = self.settings
        return min(2 * s.transaction_timeout_ms, 0.9 * s.max_poll_interval_ms) / 1000

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._release(partitions)
        log.info("revoked %s", _names(partitions))

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._release(partitions)
        log.warning("lost %s (another member may own them now)", _names(partitions))

    def _release(self, partitions: list[TopicPartition]) -> None:
        gone = {(p.topic, p.partition) for p in partitions}
        self._assigned -= gone
        self._at_end -= gone
        # A store partition stays while any input topic still has that partition here.
        still = {p for _t, p in self._assigned}
        for store in self.stores:
            store.revoked({p.partition for p in partitions} - still)

    # -- the batch ------------------------------------------------------------------------

    def _consume(self) -> list[Consumed]:
        messages = self.consumer.consume(
            self.settings.batch_max_records, self.settings.batch_max_ms / 1000
        )
        batch = []
        for msg in messages:
            err = msg.error()
            if err is not None:
                self._consumer_error(err, (msg.topic() or "", msg.partition() or 0))
                continue
            rec = Consumed.from_message(msg)
            self._at_end.discard(rec.tp)
            batch.append(rec)
        self._held = dict(self._generation)
        return self._owned(batch)

    def _owned(self, batch: Sequence[Consumed]) -> list[Consumed]:
        """The records of `batch` whose partitions stayed here since they were fetched."""
        return [
            r
            for r in batch
            if r.tp in self._assigned and self._generation.get(r.tp) == self._held.get(r.tp)
        ]

    def _consumer_error(self, err: KafkaError, tp: tuple[str, int]) -> None:
        if err.code() == KafkaError._PARTITION_EOF:
            self._at_end.add(tp)
            return
        if err.fatal():
            raise TransactionError("consume", err, ErrorClass.FATAL)
        log.warning("consumer: %s", err.str())

    def _process(self, batch: list[Consumed]) -> None:
        """Commit `batch` once: retry transient failures, isolate poison, split on aborts."""
        attempts: dict[RecordKey, int] = {}
        isolate = False
        aborts = 0
        while True:
            if self._stop.is_set() and aborts + sum(attempts.values()) > 0:
                raise Stopping  # nothing is open; the next owner redoes this batch
            batch = self._owned(batch)
            if not batch:
                return
            try:
                result = self.runner.run(batch, attempts, isolate)
            except RecordTransient as exc:
                n = attempts[key_of(exc.record)] = attempts.get(key_of(exc.record), 0) + 1
                self.stats.retries += 1
                log.warning(
                    "transient failure at %s (attempt %d): %s; retrying the batch",
                    _where(exc.record),
                    n,
                    self.redact(str(exc.error)),
                )
                self._back_off(n)
                continue
            except RecordUnexpected as exc:
                log.error(
                    "unexpected %s at %s; redoing the batch to isolate the culprit",
                    self.redact(str(exc)),
                    _where(exc.record),
                )
                isolate = True
                continue
            try:
                self._commit(result)
                return
            except TransactionError as exc:
                aborts += 1
                if self._aborted(exc, aborts, "transaction"):
                    self._split(batch, exc)
                    return
                self._back_off(aborts)

    def _aborted(self, exc: TransactionError, aborts: int, what: str) -> bool:
        """Abort after the `aborts`-th failed commit in a row (or stop, if it is fatal).
        True when a record is to blame often enough to isolate it: only an error about a
        record is worth that; any other (a timeout, the coordinator moving) is retried
        and never dead-letters."""
        if exc.error_class is ErrorClass.FATAL:
            raise exc
        self.stats.aborts += 1
        log.warning("%s aborted (%d): %s", what, aborts, exc)
        self.committer.abort()
        return aborts >= self.settings.isolate_after_aborts and is_record_error(exc.error)

    def _back_off(self, attempt: int) -> None:
        s = self.settings
        self._wait(backoff_s(attempt, s.backoff_initial_ms, s.backoff_max_ms))

    def _split(self, batch: list[Consumed], exc: TransactionError) -> None:
        """A batch that keeps aborting: bisect it until the record that fails is alone,
        then dead-letter that record with the transaction's error."""
        if len(batch) == 1:
            self._dead_letter_alone(batch[0], exc)
            return
        mid = len(batch) // 2
        self._process(batch[:mid])
        self._process(batch[mid:])

    def _dead_letter_alone(self, record: Consumed, exc: TransactionError) -> None:
        """Commit `record` to the DLQ on its own; stop when even that is refused."""
        log.error("record %s fails every transaction; dead-lettering it", _where(record))
        failure = Failure(record, exc, "TRANSACTION_FAILED", self.settings.isolate_after_aborts)
        aborts = 0
        while True:
            if not self._owned([record]):
                return  # moved to another member, which redoes it
            for store in self.stores:
                store.begin_batch()  # its writes died with its transactions
            try:
                self._commit(BatchResult([record], [], [failure]))
                return
            except TransactionError as again:
                aborts += 1
                if self._aborted(again, aborts, "dead-letter transaction"):
                    raise TransactionError(
                        f"dead-lettering {_where(record)} (the DLQ topic refuses it too; "
                        "raise its max.message.bytes or fix the record at its source)",
                        again.error,
                        ErrorClass.FATAL,
                    ) from again
                self._back_off(aborts)

    def _commit(self, result: BatchResult) -> None:
        """Check the breaker, then commit the outputs and the DLQ records together."""
        last = result.failures[-1] if result.failures else None
        before = self.breaker.snapshot()
        self.breaker.check(
            result.outcomes(), self.redact(f"{last.reason}: {last.error}") if last else ""
        )
        dlq = [
            dlq_record(f, self.settings.dlq_topic, self.settings.instance_id, self.redact)
            for f in result.failures
        ]
        try:
            self.committer.commit(next_offsets(result.records), [*result.outputs, *dlq])
        except TransactionError:
            self.breaker.restore(before)  # the batch is redone: its outcomes count then
            raise
        for store in self.stores:
            store.commit_batch()
        if self.until_caught_up:
            self._not_at_end(result.outputs)
        self.stats.records += len(result.records)
        self.stats.outputs += len(result.outputs)
        self.stats.dead_lettered += len(dlq)
        self.stats.transactions += 1
        self.stats.last_commit_at = time.monotonic()
        for f in result.failures:
            log.warning(
                "dead-lettered %s: %s %s",
                _where(f.record),
                f.reason,
                self.redact(str(f.error))[:200],
            )

    def _not_at_end(self, outputs: Sequence[Encoded]) -> None:
        """Records we just wrote to one of our own inputs are still to be read: their
        partitions are no longer at their end. The partition is the one our producer's
        murmur2 partitioner picks for the key."""
        inputs = set(self.settings.input_topics)
        for out in outputs:
            if out.topic not in inputs:
                continue
            if out.partition >= 0:
                self._at_end.discard((out.topic, out.partition))
            elif out.key is not None:
                count = self._partition_counts.get(out.topic)
                if count is None:
                    meta = self.consumer.list_topics(out.topic, timeout=10)
                    count = self._partition_counts[out.topic] = len(
                        meta.topics[out.topic].partitions
                    )
                self._at_end.discard((out.topic, partition_for(out.key, count)))
            else:
                self._at_end = {tp for tp in self._at_end if tp[0] != out.topic}

    def _wait(self, seconds: float) -> None:
        """Back off without leaving the group: poll with fetching paused.

        Polling serves rebalance callbacks, so the held batch learns of revoked partitions.
        A record fetched meanwhile (from a partition assigned during the wait) is sought
        back, so it is read again later rather than lost.
        """
        deadline = time.monotonic() + seconds
        paused = self.consumer.assignment()
        self.consumer.pause(paused)
        try:
            while time.monotonic() < deadline:
                if self._stop.is_set():
                    raise Stopping
                msg = self.consumer.poll(min(0.2, max(deadline - time.monotonic(), 0)))
                if msg is not None and msg.error() is None:
                    rec = Consumed.from_message(msg)
                    self.consumer.seek(TopicPartition(rec.topic, rec.partition, rec.offset))
        finally:
            # Resume every partition paused here, revoked meanwhile or not: librdkafka
            # keeps a partition's pause across revoke and re-assignment, so one revoked
            # during the wait would come back paused and never be fetched again.
            held = {(tp.topic, tp.partition) for tp in paused}
            now = [tp for tp in self.consumer.assignment() if (tp.topic, tp.partition) not in held]
            self.consumer.resume([*paused, *now])

    # -- progress -------------------------------------------------------------------------

    def _report(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_report < 10:
            return
        self._last_report = now
        s = self.stats
        lag = self._lag()
        log.info(
            "processed %d records (%.0f/s), %d outputs, %d dead-lettered, %d transactions, "
            "%d aborts, %d retries; lag %s",
            s.records,
            s.rate(),
            s.outputs,
            s.dead_lettered,
            s.transactions,
            s.aborts,
            s.retries,
            "unknown" if lag is None else lag,
        )

    def _lag(self) -> int | None:
        total = 0
        try:
            positions = self.consumer.position(
                [TopicPartition(t, p) for t, p in sorted(self._assigned)]
            )
            for tp in positions:
                _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
                if tp.offset >= 0 and high >= 0:
                    total += max(high - tp.offset, 0)
        except Exception:  # lag is informative only
            return None
        return total

    def _caught_up(self, got_records: bool) -> bool:
        """True when every assigned partition has reported its end (under read_committed,
        the last stable offset) and this poll brought nothing."""
        return not got_records and bool(self._assigned) and self._assigned <= self._at_end


def _where(rec: Consumed) -> str:
    return f"{rec.topic}[{rec.partition}]@{rec.offset}"


def _names(partitions: Sequence[TopicPartition]) -> str:
    return ", ".join(f"{p.topic}[{p.partition}]" for p in partitions) or "nothing"


def _advice(exc: TransactionError) -> str:
    code = exc.error.code()
    if code in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED):
        return (
            "Another instance with the same transactional.id started (this one is a "
            "zombie); it is safe to exit. Give each instance its own EOS_INSTANCE_ID."
        )
    return "The producer cannot continue; restart the instance (uncommitted work is redone)."


def _overdue(limit: float) -> None:
    log.error("shutdown took longer than %.0fs; exiting hard", limit)
    import os

    os._exit(EXIT_FATAL)
