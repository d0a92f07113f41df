"""Where a batch commits. The step order of a transaction is written down in `commit`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from eos.kafka.errors import ErrorClass, TransactionError, classify, kafka_error
from eos.kafka.produce import Encoded, produce

log = logging.getLogger("eos.transaction")
T = TypeVar("T")

# How long one transactional call may keep failing retriably before we give up on it
# and treat the transaction as failed (abort, redo the batch). Not for the commit: see
# `commit`.
RETRY_BUDGET_S = 60.0
RETRY_PAUSE_S = (0.2, 5.0)  # first and longest pause between retries


class Committer(Protocol):
    def init(self) -> None: ...
    def commit(self, offsets: Sequence[TopicPartition], outputs: Sequence[Encoded]) -> None: ...
    def abort(self) -> None: ...
    def close(self) -> None: ...


class TransactionalCommitter:
    """Exactly-once: a batch's outputs, DLQ records and input offsets in one transaction."""

    def __init__(self, producer: Producer, consumer: Consumer) -> None:
        self._producer = producer
        self._consumer = consumer
        self._open = False

    def init(self) -> None:
        # Fences any older producer with our transactional.id and aborts its open transaction.
        self._call("init_transactions", lambda: self._producer.init_transactions(60))

    def commit(self, offsets: Sequence[TopicPartition], outputs: Sequence[Encoded]) -> None:
        """The step order of every batch:

        1. begin the transaction;
        2. produce the outputs and dead-letter records (one list, in input order);
        3. add the consumer's next offsets, with its group metadata, to the transaction
           (the broker rejects them when the group has moved on to a newer generation;
           the processor itself only passes partitions it still owns);
        4. commit: librdkafka flushes every produced record, then commits. A commit that
           times out is retried for as long as it takes, never aborted, since it may
           already have succeeded.
        """
        self._call("begin_transaction", self._producer.begin_transaction)
        self._open = True
        self._produce_all(outputs)
        group = self._call("consumer_group_metadata", self._consumer.consumer_group_metadata)
        self._call(
            "send_offsets_to_transaction",
            lambda: self._producer.send_offsets_to_transaction(list(offsets), group, 30),
        )
        self._call("commit_transaction", lambda: self._producer.commit_transaction(30), budget=None)
        self._open = False

    def abort(self) -> None:
        if self._open:
            self._call("abort_transaction", lambda: self._producer.abort_transaction(30))
            self._open = False

    def close(self) -> None:
        self.abort()
        self._producer.flush(10)

    def _produce_all(self, outputs: Sequence[Encoded]) -> None:
        for out in outputs:
            try:
                produce(self._producer, out)
            except KafkaException as exc:
                err = kafka_error(exc)
                fatal = err.fatal() or err.code() in (
                    KafkaError._FATAL,
                    KafkaError._FENCED,
                    KafkaError.PRODUCER_FENCED,
                )
                # A record the client refuses (too large, say) fails the transaction only.
                cls = ErrorClass.FATAL if fatal else ErrorClass.ABORTABLE
                raise TransactionError(f"produce to {out.topic}", err, cls) from exc
        self._producer.poll(0)

    def _call(self, step: str, fn: Callable[[], T], budget: float | None = RETRY_BUDGET_S) -> T:
        """Call `fn`, retrying retriable errors with growing pauses for `budget` seconds
        (None: until it succeeds or fails otherwise)."""
        deadline = None if budget is None else time.monotonic() + budget
        pause, longest = RETRY_PAUSE_S
        while True:
            try:
                return fn()
            except KafkaException as exc:
                err = kafka_error(exc)
                cls = classify(err)
                if cls is ErrorClass.RETRIABLE and (
                    deadline is None or time.monotonic() < deadline
                ):
                    log.warning("%s: retriable error %s, retrying in %.1fs", step, err.str(), pause)
                    time.sleep(pause)
                    pause = min(pause * 2, longest)
                    continue
                if cls is ErrorClass.RETRIABLE:
                    cls = ErrorClass.ABORTABLE if step != "init_transactions" else ErrorClass.FATAL
                raise TransactionError(step, err, cls) from exc


class AtLeastOnceCommitter:
    """The same loop without transactions: outputs are flushed, then offsets committed.

    A crash between the two redelivers the batch; it exists to measure what
    exactly-once costs.
    """

    def __init__(self, producer: Producer, consumer: Consumer) -> None:
        self._producer = producer
        self._consumer = consumer
        self._errors: list[KafkaError] = []

    def init(self) -> None:
        pass

    def commit(self, offsets: Sequence[TopicPartition], outputs: Sequence[Encoded]) -> None:
        self._errors.clear()
        for out in outputs:
            try:
                produce(self._producer, out, self._on_delivery)
            except KafkaException as exc:
                raise TransactionError(
                    f"produce to {out.topic}", kafka_error(exc), ErrorClass.ABORTABLE
                ) from exc
        remaining = self._producer.flush(60)
        if remaining or self._errors:
            err = self._errors[0] if self._errors else KafkaError(KafkaError._TIMED_OUT)
            raise TransactionError("flush outputs", err, ErrorClass.ABORTABLE)
        try:
            self._consumer.commit(offsets=list(offsets), asynchronous=False)
        except KafkaException as exc:
            raise TransactionError(
                "commit offsets", kafka_error(exc), ErrorClass.ABORTABLE
            ) from exc

    def _on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._errors.append(err)

    def abort(self) -> None:
        pass

    def close(self) -> None:
        self._producer.flush(10)
