"""librdkafka's error classes for transactional calls, as one enum."""

from __future__ import annotations

from enum import Enum

from confluent_kafka import KafkaError, KafkaException


class ErrorClass(Enum):
    RETRIABLE = "retriable"  # call the same function again
    ABORTABLE = "txn_requires_abort"  # abort the transaction, redo the batch
    FATAL = "fatal"  # the producer is unusable (fenced included): stop


class TransactionError(Exception):
    """A transactional call failed; `error_class` says what the caller must do."""

    def __init__(self, step: str, error: KafkaError, error_class: ErrorClass) -> None:
        super().__init__(f"{step} failed ({error_class.value}): {error.str()} [{error.name()}]")
        self.step = step
        self.error = error
        self.error_class = error_class


def kafka_error(exc: KafkaException) -> KafkaError:
    err = exc.args[0] if exc.args else None
    if isinstance(err, KafkaError):
        return err
    return KafkaError(KafkaError._FAIL, str(exc))


def classify(error: KafkaError) -> ErrorClass:
    """Order matters: librdkafka may flag a fatal error as retriable too."""
    if error.fatal() or error.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED):
        return ErrorClass.FATAL
    if error.txn_requires_abort():
        return ErrorClass.ABORTABLE
    if error.retriable():
        return ErrorClass.RETRIABLE
    # The client's contract: anything else from a transactional call is fatal.
    return ErrorClass.FATAL


# Errors a broker or the client gives one record (its size, its shape, its partition, its
# topic), not the cluster: the only aborts worth bisecting a batch for. Any other abort (timeouts,
# coordinator moves, authorization) says nothing about the records and is retried.
RECORD_ERRORS = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_MSG,
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_TIMESTAMP,
        KafkaError.INVALID_RECORD,
        KafkaError.POLICY_VIOLATION,
        KafkaError._UNKNOWN_PARTITION,
        # About the record's destination: a topic deleted, never created, or not ours.
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.TOPIC_EXCEPTION,
    }
)

TOPIC_ERRORS = frozenset(
    {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC, KafkaError.TOPIC_EXCEPTION}
)


def is_record_error(error: KafkaError) -> bool:
    return error.code() in RECORD_ERRORS


# Errors that pass once the cluster settles: a coordinator loading or moving, an offset
# still inside an open transaction, a broker briefly out of reach. librdkafka does not
# flag all of them retriable in every API's result.
SETTLING_ERRORS = frozenset(
    {
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.UNSTABLE_OFFSET_COMMIT,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.UNKNOWN_LEADER_EPOCH,
        KafkaError.FENCED_LEADER_EPOCH,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
    }
)


# A request sent with a leader (epoch) that has since moved: fresh metadata answers it.
STALE_LEADER_ERRORS = frozenset(
    {
        KafkaError.FENCED_LEADER_EPOCH,
        KafkaError.UNKNOWN_LEADER_EPOCH,
        KafkaError.NOT_LEADER_FOR_PARTITION,
    }
)


def is_settling(error: KafkaError) -> bool:
    """True when asking again later is the answer."""
    return error.retriable() or error.code() in SETTLING_ERRORS
