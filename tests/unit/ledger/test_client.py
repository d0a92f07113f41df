"""The ledger's request-reply client and `eos pay`, without a broker: amounts, reply
topics, which record answers which request, and what the command prints and exits with."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from click.testing import CliRunner, Result

from eos.cli import cli
from eos.cli.pay import summary
from eos.config import EngineSettings
from eos.errors import ConfigurationError
from eos.ledger.client import (
    OutcomeUnknown,
    PaymentClient,
    check_reply_topic,
    default_reply_topic,
    is_answer,
    minor_units,
)
from eos.ledger.models import OutcomeStatus, PaymentOutcome, PaymentRequest
from eos.ledger.settings import LedgerSettings
from eos.serde.wire import DecodeError


@pytest.mark.parametrize(
    ("amount", "code", "minor"),
    [
        ("12.34", "EUR", 1234),
        ("12", "EUR", 1200),
        ("12.3", "EUR", 1230),
        ("12.340", "EUR", 1234),  # a trailing zero adds no precision
        ("0.01", "EUR", 1),
        ("1200", "JPY", 1200),
        ("1.234", "KWD", 1234),
        ("1000000", "EUR", 100_000_000),  # the largest payment
    ],
)
def test_an_amount_in_major_units_becomes_minor_units(amount: str, code: str, minor: int) -> None:
    assert minor_units(amount, code) == minor


@pytest.mark.parametrize(
    ("amount", "code", "says"),
    [
        ("12.345", "EUR", "more decimals than EUR has (2)"),
        ("12.5", "JPY", "more decimals than JPY has (0)"),
        ("0", "EUR", "not positive"),
        ("0.00", "EUR", "not positive"),
        ("-1", "EUR", "not a plain decimal number"),
        ("1e3", "EUR", "not a plain decimal number"),
        ("1,50", "EUR", "not a plain decimal number"),
        (" 1", "EUR", "not a plain decimal number"),
        ("", "EUR", "not a plain decimal number"),
        ("1" * 19, "EUR", "not a plain decimal number"),
        ("1000000.01", "EUR", "above the largest payment, 1000000.00 EUR"),
        ("1", "XQZ", "currency 'XQZ' is not one of"),
        ("1", "eur", "currency 'eur' is not one of"),  # the table's codes are upper case
    ],
)
def test_a_bad_amount_or_currency_says_what_is_wrong(amount: str, code: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        minor_units(amount, code)


def test_the_default_reply_topic_is_stable_per_user_and_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("getpass.getuser", lambda: "ann o'neil")
    monkeypatch.setattr("socket.gethostname", lambda: "box.example")
    ledger = LedgerSettings()
    topic = default_reply_topic(ledger)
    assert topic == "replies.pay.ann_o_neil.box.example"
    assert default_reply_topic(ledger) == topic
    check_reply_topic(EngineSettings(), ledger, topic)  # one the ledger answers on


def test_the_default_reply_topic_without_a_login_name(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_user() -> str:
        raise OSError("no login name")

    monkeypatch.setattr("getpass.getuser", no_user)
    assert default_reply_topic(LedgerSettings()).startswith("replies.pay.anonymous.")


@pytest.mark.parametrize(
    ("prefix", "topic", "says"),
    [
        ("replies.", "answers", "does not start with 'replies.'"),
        ("replies.", "replies.a b", "not a valid topic name"),
        ("", "payments", "one of the ledger's own topics"),
        ("", "eos.dlq", "one of the ledger's own topics"),
        ("", "eos.dlq.replay-failed", "one of the ledger's own topics"),
    ],
)
def test_a_reply_topic_the_ledger_would_refuse_is_refused_first(
    prefix: str, topic: str, says: str
) -> None:
    ledger = LedgerSettings(reply_topic_prefix=prefix)
    with pytest.raises(ConfigurationError, match=says):
        check_reply_topic(EngineSettings(), ledger, topic)


def _outcome(correlation: str | None = None, **fields: Any) -> PaymentOutcome:
    base: dict[str, Any] = {
        "payment_id": str(uuid.uuid4()),
        "correlation_id": correlation,
        "status": OutcomeStatus.POSTED,
        "debit_balance_after_minor": 8766,
    }
    return PaymentOutcome.model_validate({**base, **fields})


def test_an_outcome_answers_the_request_its_header_or_its_field_names() -> None:
    mine = str(uuid.uuid4())
    assert is_answer(mine, mine.encode(), _outcome(mine))
    assert is_answer(mine, mine.encode(), _outcome(None))
    assert is_answer(mine, None, _outcome(mine))
    assert not is_answer(mine, None, _outcome(None))
    assert not is_answer(mine, b"other", _outcome("other"))
    assert not is_answer(mine, None, _outcome(str(uuid.uuid4())))


class FakeMessage:
    def __init__(self, value: bytes, correlation: str | None) -> None:
        self._value = value
        self._headers = [] if correlation is None else [("correlation-id", correlation.encode())]

    def value(self) -> bytes:
        return self._value

    def headers(self) -> list[tuple[str, bytes]]:
        return self._headers

    def error(self) -> None:
        return None


class FakeConsumer:
    def __init__(self, messages: list[FakeMessage]) -> None:
        self._messages: Iterator[FakeMessage] = iter(messages)

    def poll(self, _timeout: float) -> FakeMessage | None:
        return next(self._messages, None)


class FakeDecoder:
    """Decodes b"<index>" to the outcome at that index; anything else is undecodable."""

    def __init__(self, outcomes: list[PaymentOutcome]) -> None:
        self.outcomes = outcomes

    def decode(self, data: bytes) -> PaymentOutcome:
        if not data.isdigit():
            raise DecodeError("NOT_WIRE_FORMAT", "not an outcome")
        return self.outcomes[int(data)]


def _client(messages: list[FakeMessage], outcomes: list[PaymentOutcome]) -> PaymentClient:
    """A client over fakes: its reading and matching, without a broker."""
    c = object.__new__(PaymentClient)
    c.reply_topic = "replies.test"
    c._consumer = cast(Any, FakeConsumer(messages))
    c._decoder = cast(Any, FakeDecoder(outcomes))
    return c


def deadline_in(seconds: float) -> float:
    return time.monotonic() + seconds


def test_the_answer_is_the_record_with_the_request_s_correlation_id() -> None:
    mine = str(uuid.uuid4())
    outcomes = [_outcome("someone-else"), _outcome(None), _outcome(mine, replay=True)]
    messages = [
        FakeMessage(b"garbage", "someone-else"),  # another writer's record: skipped
        FakeMessage(b"0", "someone-else"),
        FakeMessage(b"1", None),  # no correlation at all: not ours
        FakeMessage(b"2", mine),
    ]
    found = _client(messages, outcomes)._await("pid", mine, deadline_in(5), 5)
    assert found is outcomes[2]
    assert found.replay


def test_an_answer_to_us_that_cannot_be_decoded_is_an_unknown_outcome() -> None:
    mine = str(uuid.uuid4())
    with pytest.raises(OutcomeUnknown, match="could not be decoded"):
        _client([FakeMessage(b"garbage", mine)], [])._await("pid", mine, deadline_in(5), 5)


def test_no_answer_within_the_timeout_is_an_unknown_outcome_that_says_retry_is_safe() -> None:
    with pytest.raises(OutcomeUnknown) as caught:
        _client([], [])._await("pid-1", "c", deadline_in(0.3), 0.3)
    message = str(caught.value)
    assert caught.value.payment_id == "pid-1"
    assert message.startswith("no outcome for payment pid-1 within 0.3s; it may still be decided")
    assert "same payment id is safe" in message
    assert "\n" not in message


def _request(**fields: Any) -> PaymentRequest:
    base: dict[str, Any] = {
        "payment_id": str(uuid.uuid4()),
        "debit_account": "alice",
        "credit_account": "bob",
        "amount_minor": 1234,
        "currency": "EUR",
        "requested_at": datetime.now(UTC),
    }
    return PaymentRequest.model_validate({**base, **fields})


def test_the_line_printed_for_each_outcome() -> None:
    req = _request()
    posted = _outcome(payment_id=req.payment_id)
    assert summary(posted, req, 0.4321) == (
        f"POSTED, alice balance after 87.66 EUR; payment {req.payment_id} in 0.43s"
    )
    replayed = posted.model_copy(update={"replay": True, "debit_balance_after_minor": -5})
    assert summary(replayed, _request(currency="JPY"), 1.0) == (
        f"POSTED, alice balance after -5 JPY; payment {req.payment_id} (replay) in 1.00s"
    )
    rejected = _outcome(
        payment_id=req.payment_id,
        status=OutcomeStatus.REJECTED,
        reason="INSUFFICIENT_FUNDS",
        debit_balance_after_minor=None,
    )
    assert summary(rejected, req, 0.2) == (
        f"REJECTED INSUFFICIENT_FUNDS; payment {req.payment_id} in 0.20s"
    )


def _pay(*args: str) -> Result:
    base = ["pay", "--from", "alice", "--to", "bob", "--amount", "1", "--currency", "EUR"]
    return CliRunner().invoke(cli, [*base, *args], prog_name="eos")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--amount", "12.345"], "eos pay: amount 12.345 has more decimals than EUR has (2)"),
        (["--amount", "ten"], "eos pay: amount 'ten' is not a plain decimal number like 12.34"),
        (["--currency", "XQZ"], "eos pay: currency 'XQZ' is not one of"),
        (["--payment-id", "nope"], "eos pay: --payment-id 'nope' is not a UUID"),
        # Refused before anything is sent: the ledger would not answer there.
        (["--reply-to", "answers"], "eos pay: reply topic 'answers' does not start with"),
    ],
)
def test_a_bad_argument_is_one_line_and_exit_2(args: list[str], says: str) -> None:
    result = _pay(*args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith(says)
    assert result.output.count("\n") == 1
    assert "Traceback" not in result.output


def test_pay_help_documents_its_exit_codes() -> None:
    result = CliRunner().invoke(cli, ["pay", "--help"], prog_name="eos")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for line in ("0 POSTED", "1 REJECTED", "2 a usage or configuration error", "4 no outcome"):
        assert line in text
    assert "--payment-id" in text and "--bootstrap-servers" in text
    assert "--batch-max-ms" not in text
