"""classify: what a failed transactional call means for the caller."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

from eos.kafka.errors import ErrorClass, TransactionError, classify, is_record_error, kafka_error


@pytest.mark.parametrize(
    ("retriable", "txn_requires_abort"),
    [(False, False), (True, False), (False, True), (True, True)],
)
def test_fatal_flag_wins_over_every_other_flag(retriable: bool, txn_requires_abort: bool) -> None:
    err = KafkaError(
        KafkaError._TIMED_OUT,
        "boom",
        fatal=True,
        retriable=retriable,
        txn_requires_abort=txn_requires_abort,
    )
    assert classify(err) is ErrorClass.FATAL


@pytest.mark.parametrize("code", [KafkaError._FENCED, KafkaError.PRODUCER_FENCED])
def test_fenced_is_fatal_even_when_flagged_retriable_or_abortable(code: int) -> None:
    assert classify(KafkaError(code)) is ErrorClass.FATAL
    flagged = KafkaError(code, "fenced", fatal=False, retriable=True, txn_requires_abort=True)
    assert classify(flagged) is ErrorClass.FATAL


def test_txn_requires_abort_is_abortable() -> None:
    err = KafkaError(KafkaError._STATE, "abort me", txn_requires_abort=True)
    assert classify(err) is ErrorClass.ABORTABLE


def test_abortable_wins_over_retriable() -> None:
    # Retrying a call cannot help once the transaction itself must be aborted.
    err = KafkaError(KafkaError._TIMED_OUT, "x", retriable=True, txn_requires_abort=True)
    assert classify(err) is ErrorClass.ABORTABLE


def test_retriable_is_retriable() -> None:
    err = KafkaError(KafkaError._TIMED_OUT, "slow coordinator", retriable=True)
    assert classify(err) is ErrorClass.RETRIABLE


@pytest.mark.parametrize(
    "code", [KafkaError._STATE, KafkaError.INVALID_TXN_STATE, KafkaError._FAIL, KafkaError._FATAL]
)
def test_an_unflagged_error_is_fatal(code: int) -> None:
    assert classify(KafkaError(code)) is ErrorClass.FATAL


def test_kafka_error_unwraps_the_exception_or_makes_a_fail_error() -> None:
    inner = KafkaError(KafkaError._TIMED_OUT, "inner", retriable=True)
    assert kafka_error(KafkaException(inner)) is inner
    made = kafka_error(KafkaException("just text"))
    assert made.code() == KafkaError._FAIL
    assert "just text" in made.str()


def test_transaction_error_names_the_step_and_the_class() -> None:
    err = KafkaError(KafkaError._TIMED_OUT, "took too long", txn_requires_abort=True)
    exc = TransactionError("commit_transaction", err, ErrorClass.ABORTABLE)
    assert exc.error is err
    assert exc.error_class is ErrorClass.ABORTABLE
    assert "commit_transaction" in str(exc)
    assert "txn_requires_abort" in str(exc)
    assert "took too long" in str(exc)


@pytest.mark.parametrize(
    "code",
    [
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError._UNKNOWN_PARTITION,
        # About the record's destination, which one record (a reply-to header) can name.
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.TOPIC_EXCEPTION,
    ],
)
def test_errors_about_one_record_are_record_errors(code: int) -> None:
    assert is_record_error(KafkaError(code))


@pytest.mark.parametrize(
    "code",
    [
        KafkaError._TIMED_OUT,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.CONCURRENT_TRANSACTIONS,
        KafkaError._FAIL,
    ],
)
def test_errors_about_the_cluster_are_not_record_errors(code: int) -> None:
    # An abort for these is retried; bisecting would dead-letter good records.
    assert not is_record_error(KafkaError(code))
