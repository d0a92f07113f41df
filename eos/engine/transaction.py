"""Where a batch commits. The step order of a transaction is written down in `commit`.

Every transactional call that can block on the cluster runs under a deadline the engine
enforces itself (`call_within`): librdkafka can block past its own timeout when the
coordinator goes away (librdkafka #5456, #5511). A call past its deadline, or an error
after which this producer cannot go on (an abort that fails, INVALID_TXN_STATE after an
epoch bump, a fence), raises ProducerLost. The processor then calls `recover()`: the
producer is abandoned and a new one with the same transactional.id is made; its
init_transactions fences the old one and completes or aborts the transaction it left,
so the group's committed offsets afterwards say exactly what was committed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Protocol, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from eos.engine.deadline import Overdue, Stopping, call_within
from eos.kafka.errors import ErrorClass, TransactionError, classify, kafka_error
from eos.kafka.produce import Encoded, LastOffsets, produce

__all__ = [
    "AtLeastOnceCommitter",
    "Committer",
    "ProducerLost",
    "TransactionalCommitter",
]

log = logging.getLogger("eos.transaction")
T = TypeVar("T")

# How long one transactional call may keep failing retriably before we give up on it
# and treat the transaction as failed (abort, redo the batch). Not for the commit: see
# `commit`.
RETRY_BUDGET_S = 60.0
RETRY_PAUSE_S = (0.2, 5.0)  # first and longest pause between retries
# Past librdkafka's own limit (the remaining transaction time), how long a call may
# still take before the engine gives up on the producer.
GRACE_S = 5.0
# The longest send_offsets_to_transaction may take, however much transaction time is
# left. It can wait forever for a group coordinator that moved or came back (librdkafka
# #5456, #5511); giving up is safe, since nothing was asked to commit, and the successor
# producer aborts the transaction at once instead of at its timeout. A healthy
# coordinator answers in milliseconds; one that is failing over, in seconds.
SEND_OFFSETS_S = 30.0

# Errors no new producer can get past: the configuration or the grants are wrong, or the
# engine called the client out of order (a bug to see, not to paper over).
STOP_ERRORS = frozenset(
    {
        KafkaError._STATE,
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.UNSUPPORTED_VERSION,
        KafkaError.UNSUPPORTED_FOR_MESSAGE_FORMAT,
        KafkaError._INVALID_ARG,
        KafkaError._NOT_IMPLEMENTED,
        KafkaError._AUTHENTICATION,
        KafkaError.SASL_AUTHENTICATION_FAILED,
    }
)
FENCE_ERRORS = frozenset(
    {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}
)


class ProducerLost(Exception):
    """This producer cannot go on, but a new one with the same transactional.id can.
    `fenced`: a newer producer with our id took over (ours, or a duplicate instance)."""

    def __init__(self, step: str, reason: str, error: KafkaError | None = None) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.error = error
        self.fenced = error is not None and error.code() in FENCE_ERRORS


class Committer(Protocol):
    # Work for the thread while a commit waits on the cluster (see call_within).
    meanwhile: Callable[[], Iterator[None]] | None

    def init(self) -> None: ...
    def commit(self, offsets: Sequence[TopicPartition], outputs: Sequence[Encoded]) -> None: ...
    def abort(self) -> None: ...
    def recover(self) -> None: ...
    def close(self) -> None: ...
    def delivered(self) -> dict[tuple[str, int], int]: ...


class TransactionalCommitter:
    """Exactly-once: a batch's outputs, DLQ records and input offsets in one transaction."""

    def __init__(
        self,
        make_producer: Callable[[], Producer],
        consumer: Consumer,
        transaction_timeout_s: float,
        stopping: Callable[[], bool] = lambda: False,
        watch: Collection[str] = (),
    ) -> None:
        """`watch`: topics whose last delivered offset per partition `delivered` reports
        (the stores' changelogs: their local checkpoints)."""
        self._make_producer = make_producer
        self._last = LastOffsets(watch)
        self._producer: Producer | None = None
        self._consumer = consumer
        self._timeout = transaction_timeout_s
        self._stopping = stopping
        self._open = False
        self._in_doubt = False  # a commit whose outcome we do not know
        self._began = 0.0
        self.meanwhile: Callable[[], Iterator[None]] | None = None
        # Producers given up on while a call may still run inside them: kept referenced,
        # since destroying one from this thread could block on that call.
        self._abandoned: list[Producer] = []

    @property
    def producer(self) -> Producer:
        if self._producer is None:
            raise RuntimeError("the committer was not initialised")
        return self._producer

    def init(self) -> None:
        """A new producer; init_transactions fences any older one with our
        transactional.id and completes or aborts the transaction it left open."""
        self._producer = self._make_producer()
        self._open = self._in_doubt = False
        producer = self._producer
        self._call(
            "init_transactions",
            lambda: producer.init_transactions(-1),
            budget=None,
            deadline_s=2 * self._timeout + GRACE_S,
        )

    def recover(self) -> None:
        """Give up on the current producer and start a new one (see the module doc)."""
        if self._producer is not None:
            self._abandoned.append(self._producer)
        self._producer = None
        self.init()

    def delivered(self) -> dict[tuple[str, int], int]:
        """The last committed transaction's last offset per watched topic-partition."""
        return self._last.offsets

    def commit(self, offsets: Sequence[TopicPartition], outputs: Sequence[Encoded]) -> None:
        """The step order of every batch:

        1. begin the transaction;
        2. produce the outputs and dead-letter records (one list, in input order);
        3. add the consumer's next offsets, with its group metadata, to the transaction
           (the broker rejects them when the group has moved on to a newer generation;
           the processor itself only passes partitions it still owns). It has a bound
           of its own, SEND_OFFSETS_S: past it the producer is lost, and nothing had
           been asked to commit;
        4. commit: librdkafka flushes every produced record, then commits. A commit that
           times out is asked again until the transaction's time is up, never aborted,
           since it may already have succeeded; past that the producer is lost and its
           successor settles the outcome.

        While 3 and 4 wait on the cluster, this thread works at `meanwhile` (the
        processor decodes the next batch's records): work that touches neither the
        producer nor the consumer, so it cannot change what this transaction holds.
        """
        producer = self.producer
        self._call("begin_transaction", producer.begin_transaction)
        self._open = True
        self._began = time.monotonic()
        self._produce_all(producer, outputs)
        group = self._call("consumer_group_metadata", self._consumer.consumer_group_metadata)
        self._call(
            "send_offsets_to_transaction",
            lambda: producer.send_offsets_to_transaction(list(offsets), group, -1),
            deadline_s=min(self._remaining(), SEND_OFFSETS_S),
            meanwhile=self.meanwhile,
        )
        self._in_doubt = True
        self._call(
            "commit_transaction",
            lambda: producer.commit_transaction(-1),
            budget=self._remaining(),  # then ProducerLost: the successor settles it
            deadline_s=self._remaining(),
            meanwhile=self.meanwhile,
        )
        self._open = self._in_doubt = False
        producer.poll(0)  # delivery reports not yet served (all are in: it flushed)

    def abort(self) -> None:
        if not self._open:
            return
        producer = self.producer
        try:
            self._call(
                "abort_transaction",
                lambda: producer.abort_transaction(-1),
                deadline_s=self._timeout + GRACE_S,
            )
        except TransactionError as exc:
            # An abort that fails leaves the producer in no state to go on.
            raise ProducerLost("abort_transaction", str(exc), exc.error) from exc
        self._open = False

    def close(self) -> None:
        """Abort what is open (not a commit in doubt: its successor settles it)."""
        if self._producer is None:
            return
        if self._open and not self._in_doubt:
            try:
                self.abort()
            except ProducerLost as exc:
                log.warning("abort at shutdown failed: %s", exc)
        producer = self._producer
        call_within(lambda: producer.flush(5), 10, "flush")

    def _remaining(self) -> float:
        return max(self._began + self._timeout - time.monotonic(), 0.0) + GRACE_S

    def _produce_all(self, producer: Producer, outputs: Sequence[Encoded]) -> None:
        watched = self._last.last_of_each(outputs)
        deadline = time.monotonic() + self._remaining()
        for i, out in enumerate(outputs):
            callback = self._last.on_delivery if i in watched else None
            try:
                produce(producer, out, callback, deadline=deadline)
            except BufferError as exc:
                err = KafkaError(KafkaError._QUEUE_FULL, str(exc))
                raise TransactionError(
                    f"produce to {out.topic}", err, ErrorClass.ABORTABLE
                ) from exc
            except KafkaException as exc:
                err = kafka_error(exc)
                if err.fatal() or err.code() in (KafkaError._FATAL, *FENCE_ERRORS):
                    raise ProducerLost(f"produce to {out.topic}", err.str(), err) from exc
                # A record the client refuses (too large, say) fails the transaction only.
                raise TransactionError(
                    f"produce to {out.topic}", err, ErrorClass.ABORTABLE
                ) from exc
        producer.poll(0)

    def _call(
        self,
        step: str,
        fn: Callable[[], T],
        budget: float | None = RETRY_BUDGET_S,
        deadline_s: float | None = None,
        meanwhile: Callable[[], Iterator[None]] | None = None,
    ) -> T:
        """Call `fn`, retrying retriable errors with growing pauses for `budget` seconds
        (None: until it succeeds or fails otherwise), each call bounded by `deadline_s`
        (None: a local call that cannot block), `meanwhile` worked at as it waits. A stop
        request ends the retries."""
        deadline = None if budget is None else time.monotonic() + budget
        pause, longest = RETRY_PAUSE_S
        while True:
            try:
                if deadline_s is None:
                    return fn()
                return call_within(fn, deadline_s, step, meanwhile)
            except Overdue as exc:
                raise ProducerLost(step, f"no answer within {deadline_s:.0f}s") from exc
            except KafkaException as exc:
                err = kafka_error(exc)
                cls = classify(err)
                if cls is ErrorClass.RETRIABLE and (
                    deadline is None or time.monotonic() < deadline
                ):
                    if self._stopping():
                        raise Stopping from exc
                    log.warning("%s: retriable error %s, retrying in %.1fs", step, err.str(), pause)
                    time.sleep(pause)
                    pause = min(pause * 2, longest)
                    continue
                if cls is ErrorClass.RETRIABLE:
                    if step == "commit_transaction":
                        raise ProducerLost(step, f"still failing: {err.str()}", err) from exc
                    cls = ErrorClass.ABORTABLE
                if cls is ErrorClass.FATAL and err.code() not in STOP_ERRORS:
                    raise ProducerLost(step, err.str(), err) from exc
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
        self.meanwhile: Callable[[], Iterator[None]] | None = None  # its waits are not filled

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

    def delivered(self) -> dict[tuple[str, int], int]:
        return {}  # local checkpoints stay where a restore left them: behind, safe

    def recover(self) -> None:
        pass  # never lost: it raises TransactionError only

    def close(self) -> None:
        self._producer.flush(10)
