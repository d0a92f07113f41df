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
from collections.abc import Callable, Collection, Sequence
from types import FrameType

from confluent_kafka import Consumer, KafkaError, TopicPartition

from eos.config import EngineSettings
from eos.engine import stats
from eos.engine.assignment import names
from eos.engine.backoff import backoff_s
from eos.engine.batch import (
    BatchResult,
    BatchRunner,
    RecordKey,
    RecordTransient,
    RecordUnexpected,
    RegistryDown,
    key_of,
)
from eos.engine.breaker import BreakerTripped, CircuitBreaker
from eos.engine.deadline import Stopping, exit_if_overdue, wait_in_group
from eos.engine.dlq import DLQ_MAX_BYTES, DLQ_MIN_BYTES, Failure, dlq_record, log_dead_letters
from eos.engine.intake import Intake
from eos.engine.pacing import BatchPace
from eos.engine.rebalance import Rebalance
from eos.engine.records import Consumed, next_offsets
from eos.engine.recovery import MemberIds, Recovered, Recovery
from eos.engine.redact import Redactor
from eos.engine.restore import RestoreStalled
from eos.engine.state import StateStore
from eos.engine.stats import OutageLog, ProgressLog, Stats
from eos.engine.transaction import Committer, ProducerLost
from eos.kafka.errors import TOPIC_ERRORS, ErrorClass, TransactionError, is_record_error
from eos.kafka.offsets import consumer_lag

log = logging.getLogger("eos.processor")

__all__ = ["Processor", "Stopping"]


class Processor:
    """The loop and its policy; every client and collaborator is given to it (built in
    `eos.engine.app`)."""

    def __init__(
        self,
        settings: EngineSettings,
        runner: BatchRunner,
        consumer: Consumer,
        committer: Committer,
        breaker: CircuitBreaker,
        redact: Redactor,
        stores: Sequence[StateStore] = (),
        until_caught_up: bool = False,
        stop: threading.Event | None = None,
        twin: Callable[[Collection[str]], str | None] = lambda _mine: None,
        rebalance: Rebalance | None = None,
        after_crash: bool = False,
    ) -> None:
        self.settings = settings
        self.runner = runner
        self.consumer = consumer
        self.committer = committer
        self.breaker = breaker
        self.redact = redact
        self.stores = stores
        self.until_caught_up = until_caught_up
        self.stats = Stats()
        self.rebalance = rebalance or Rebalance(settings.input_topics, consumer, stores)
        self.assignment = self.rebalance.assignment
        self._progress = ProgressLog(
            self.stats,
            lambda: consumer_lag(consumer, self.assignment.partitions),
            self.rebalance.describe_stores,
        )
        self._stop = stop or threading.Event()
        self._pace = BatchPace(settings.batch_max_records, settings.batch_target_ms / 1000)
        self._intake = Intake(consumer, self.rebalance, self._consumer_error)
        committer.meanwhile = lambda: runner.decode_ahead(self._intake.upcoming(self._pace.limit))
        self._members = MemberIds(consumer)
        self._recovery = Recovery(
            committer,
            consumer,
            stores,
            self.stats,
            settings,
            self._back_off,
            lambda: twin(self._members.all()),
            after_crash,
        )
        self.registry_outage = OutageLog("schema registry unavailable")

    def request_stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        if signum is not None:
            log.info(
                "received %s: finishing the batch in flight, then stopping",
                signal.Signals(signum).name,
            )
        self._stop.set()

    def run(self) -> int:
        """Process until stopped; returns the exit code."""
        code = stats.EXIT_OK
        try:
            self._recovery.start()
            self.consumer.subscribe(
                self.rebalance.subscription,
                on_assign=self._members.noting(self.rebalance.assigned),
                on_revoke=self._members.noting(self._on_revoke),
                on_lost=self._members.noting(self._on_lost),
            )
            log.info(
                "processing %s as group %s, instance %s (%s)",
                ",".join(self.settings.input_topics),
                self.settings.group_id,
                self.settings.instance_id,
                self.settings.mode.value,
            )
            while not self._stop.is_set():
                self.stats.alive_at = time.monotonic()
                self.rebalance.restore_step()
                batch = self._consume()
                if batch:
                    self.stats.batch_started()
                    self._process_batch(batch)
                self._progress.maybe()
                if self.until_caught_up and (
                    not self.rebalance.holding and self.assignment.caught_up(bool(batch))
                ):
                    log.info("caught up with all assigned partitions; stopping")
                    break
        except Stopping:
            pass
        except BreakerTripped as exc:
            log.error("circuit breaker tripped: %s", exc)
            code = stats.EXIT_BREAKER
        except TransactionError as exc:
            log.error("stopping: %s. %s", exc, stats.advice(exc))
            code = stats.EXIT_FATAL
        except RestoreStalled as exc:
            log.error("stopping: %s", exc)
            code = stats.EXIT_FATAL
        except BaseException:
            code = stats.EXIT_FATAL  # the caller reports it; the shutdown must not say "exit 0"
            raise
        finally:
            code = self._shutdown(code)
        return code

    def _shutdown(self, code: int) -> int:
        # Each step on its own: a failing abort must not keep the consumer in the group.
        steps = [self.committer.close] if code == stats.EXIT_OK else []
        steps.append(self.consumer.close)  # leaves the group so partitions move at once
        steps.append(self.rebalance.close)
        with exit_if_overdue(self.settings.shutdown_timeout_s, "shutdown"):
            for close in steps:
                try:
                    close()
                except Exception as exc:  # already stopping; say why, keep the code honest
                    log.error("error while shutting down: %s", self.redact(str(exc)))
                    code = code or stats.EXIT_FATAL
        self._progress.maybe(force=True)
        log.info("stopped (exit %d)", code)
        return code

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        gone = self.rebalance.released(partitions)
        self._intake.drop(gone)
        log.info("revoked %s", names(gone))

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        gone = self.rebalance.released(partitions)
        self._intake.drop(gone)
        log.warning("lost %s (another member may own them now)", names(gone))

    def _consume(self) -> list[Consumed]:
        wait = 0.0 if self.rebalance.only_restoring else self.settings.batch_max_ms / 1000
        return self._intake.next(self._pace.limit, wait)

    def _consumer_error(self, err: KafkaError, tp: tuple[str, int]) -> None:
        if err.code() == KafkaError._PARTITION_EOF:
            self.assignment.reached_end(tp)
        elif err.fatal() or err.code() == KafkaError._FATAL:  # the event's own flag is unset
            raise TransactionError("consume", err, ErrorClass.FATAL)
        else:
            log.warning("consumer: %s", err.str())

    def _process_batch(self, batch: list[Consumed]) -> None:
        # Recovered: rewound to the committed offsets; what was read ahead is read again.
        try:
            with self._pace.timing(len(batch)):
                self._process(batch, owned=True)  # the intake just filtered it
        except Recovered:
            self._intake.clear()
            self.assignment.rewound(self.assignment.partitions)

    def _process(self, batch: list[Consumed], owned: bool = False) -> None:
        """Commit `batch` once: retry transient failures, isolate poison, split on aborts.
        `owned`: filtered for ownership with no poll since (a poll may run a rebalance)."""
        attempts: dict[RecordKey, int] = {}
        isolate = False
        aborts = waits = 0
        while True:
            if self._stop.is_set() and aborts + waits + sum(attempts.values()) > 0:
                raise Stopping  # nothing is open; the next owner redoes this batch
            if not owned:
                batch = self.assignment.owned(batch)
            owned = False  # a backoff polls
            if not batch:
                return
            try:
                result = self.runner.run(batch, attempts, isolate)
                self.registry_outage.up()
            except RegistryDown as exc:
                waits += 1
                self.stats.registry_waits += 1
                self.registry_outage.down(self.redact(str(exc.error)))
                self._back_off(waits)  # capped at EOS_BACKOFF_MAX_MS; no attempt is spent
                continue
            except RecordTransient as exc:
                n = attempts[key_of(exc.record)] = attempts.get(key_of(exc.record), 0) + 1
                self.stats.retries += 1
                log.warning(
                    "transient failure at %s (attempt %d): %s; retrying the batch",
                    exc.record.where,
                    n,
                    self.redact(str(exc.error)),
                )
                self._back_off(n)
                continue
            except RecordUnexpected as exc:
                log.error(
                    "unexpected %s at %s; redoing the batch to isolate the culprit",
                    self.redact(str(exc)),
                    exc.record.where,
                )
                isolate = True
                continue
            try:
                with self._pace.committing():
                    self._commit(result)
                return
            except TransactionError as exc:
                aborts += 1
                if exc.error.code() in TOPIC_ERRORS:
                    self.runner.topics_changed()  # the redo dead-letters what aims at it
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
        try:
            self.committer.abort()
        except ProducerLost as lost:
            self._recovery.recover(None, lost, self.assignment.partitions)
        return aborts >= self.settings.isolate_after_aborts and is_record_error(exc.error)

    def _back_off(self, attempt: int) -> None:
        s = self.settings
        self.stats.alive_at = time.monotonic()  # waiting on purpose is alive
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
        log.error("record %s fails every transaction; dead-lettering it", record.where)
        failure = Failure(record, exc, "TRANSACTION_FAILED", self.settings.isolate_after_aborts)
        aborts, limit = 0, DLQ_MAX_BYTES
        while True:
            if not self.assignment.owns(record.tp):
                return  # moved to another member, which redoes it
            for store in self.stores:
                store.begin_batch()  # its writes died with its transactions
            try:
                self._commit(BatchResult([record], [], [failure]), limit)
                return
            except TransactionError as again:
                aborts += 1
                if self._aborted(again, aborts, "dead-letter transaction"):
                    if limit > DLQ_MIN_BYTES:  # keep the provenance, drop the value
                        aborts, limit = 0, DLQ_MIN_BYTES
                        continue
                    raise TransactionError(
                        f"dead-lettering {record.where} (the DLQ topic refuses it too, even cut "
                        f"to {DLQ_MIN_BYTES} bytes; check its max.message.bytes and ACLs)",
                        again.error,
                        ErrorClass.FATAL,
                    ) from again
                self._back_off(aborts)

    def _commit(self, result: BatchResult, dlq_max_bytes: int = DLQ_MAX_BYTES) -> None:
        """Check the breaker, then commit the outputs and the DLQ records together."""
        last = result.failures[-1] if result.failures else None
        reason = self.redact(f"{last.reason}: {last.error}") if last else ""
        s = self.settings
        dlq = [
            dlq_record(f, s.dlq_topic, s.instance_id, self.redact, max_bytes=dlq_max_bytes)
            for f in result.failures
        ]
        started = time.monotonic()
        with self.breaker.counting(result.outcomes(), reason):
            try:
                self.committer.commit(next_offsets(result.records), [*result.outputs, *dlq])
            except ProducerLost as lost:
                self._recovery.recover(result, lost, self.assignment.partitions)
        took = time.monotonic() - started
        delivered = self.committer.delivered()
        for store in self.stores:
            store.commit_batch(delivered)
        if self.until_caught_up:
            self.assignment.wrote(result.outputs)
        reasons = [f.reason for f in result.failures]
        self.stats.committed(len(result.records), len(result.outputs), reasons, took)
        log_dead_letters(result.failures, self.redact)

    def _wait(self, seconds: float) -> None:
        self.assignment.rewound(wait_in_group(self.consumer, seconds, self._stop))
