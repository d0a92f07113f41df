"""`eos pay`: one payment to the ledger, answered on a reply topic."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import click
from confluent_kafka import KafkaException

from eos.cli.common import CONTEXT_SETTINGS, exit_with, fail
from eos.cli.preflight import reachable
from eos.cli.settings import CONNECTION, engine_options, engine_settings, ledger_settings
from eos.errors import EosError
from eos.kafka.errors import kafka_error
from eos.ledger.client import (
    SETUP_TIMEOUT_S,
    OutcomeUnknown,
    check_reply_topic,
    default_reply_topic,
    minor_units,
    pay,
)
from eos.ledger.currencies import currency
from eos.ledger.models import OutcomeStatus, PaymentOutcome, PaymentRequest
from eos.ledger.rules import canonical_payment_id

__all__ = ["pay_command", "summary"]

POSTED, REJECTED, USAGE, NO_OUTCOME = 0, 1, 2, 4


@click.command("pay", context_settings=CONTEXT_SETTINGS)
@click.option("--from", "debit", required=True, metavar="ACCOUNT", help="Account debited.")
@click.option("--to", "credit", required=True, metavar="ACCOUNT", help="Account credited.")
@click.option(
    "--amount", required=True, metavar="AMOUNT", help="In major units: 12.34 EUR, 1200 JPY."
)
@click.option("--currency", "code", required=True, metavar="CODE", help="ISO 4217 code: EUR.")
@click.option(
    "--payment-id",
    default=None,
    metavar="UUID",
    help="The idempotency key; give the same one to retry. [default: a new UUID]",
)
@click.option(
    "--reply-to",
    default=None,
    metavar="TOPIC",
    help="Topic the outcome comes back on, created when missing; must start with "
    "EOS_LEDGER_REPLY_TOPIC_PREFIX. [default: <prefix>pay.<user>.<host>]",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds to wait for the outcome once the payment is sent (reaching the cluster "
    f"and the registry before that has {SETUP_TIMEOUT_S:g} s of its own).",
)
@click.option("--reference", default=None, metavar="TEXT", help="Free text kept with it.")
@engine_options(*CONNECTION)
def pay_command(
    debit: str,
    credit: str,
    amount: str,
    code: str,
    payment_id: str | None,
    reply_to: str | None,
    timeout: float,
    reference: str | None,
    **given: str | None,
) -> None:
    """Send one payment to the ledger and wait for its outcome.

    Prints one line: POSTED with the debit account's balance after, or REJECTED with
    the reason; the payment id; (replay) when the ledger had decided this payment id
    before and answers with that first outcome; the time it took.

    \b
    Exit codes:
      0  POSTED
      1  REJECTED
      2  a usage or configuration error: nothing was sent
      4  no outcome within --timeout (or interrupted): the payment may still be
         decided. Retry with the same --payment-id (it is printed) and the same
         fields: the ledger decides a payment id once and answers a retry with
         the original outcome, marked (replay)
    """
    started = time.monotonic()
    code = code.upper()
    try:
        minor = minor_units(amount, code)
    except ValueError as exc:
        fail(f"eos pay: {exc}", USAGE)
    pid = _payment_id(payment_id)
    engine = engine_settings(given)
    ledger = ledger_settings()
    request = PaymentRequest(
        payment_id=pid,
        debit_account=debit,
        credit_account=credit,
        amount_minor=minor,
        currency=code,
        requested_at=datetime.now(UTC),
        reference=reference,
    )
    topic = reply_to or default_reply_topic(ledger)
    try:  # what can be told without a cluster, before asking it
        check_reply_topic(engine, ledger, topic)
    except EosError as exc:
        fail(f"eos pay: {exc}; nothing was sent", USAGE)
    reachable(engine, "eos pay")
    try:
        outcome = pay(engine, ledger, request, reply_topic=topic, timeout=timeout)
    except OutcomeUnknown as exc:
        fail(f"eos pay: {exc.what}; {_retry_hint(pid)}", NO_OUTCOME)
    except KeyboardInterrupt:
        fail(f"eos pay: interrupted before an outcome arrived; {_retry_hint(pid)}", NO_OUTCOME)
    except KafkaException as exc:
        fail(f"eos pay: {kafka_error(exc).str()}; nothing was sent", USAGE)
    except (EosError, TimeoutError) as exc:
        what = str(exc) or "the cluster did not answer in time"
        fail(f"eos pay: {what}; nothing was sent", USAGE)
    click.echo(summary(outcome, request, time.monotonic() - started))
    exit_with(POSTED if outcome.status is OutcomeStatus.POSTED else REJECTED)


def summary(outcome: PaymentOutcome, request: PaymentRequest, seconds: float) -> str:
    """The one line `eos pay` prints for an outcome."""
    replay = " (replay)" if outcome.replay else ""
    if outcome.status is OutcomeStatus.POSTED:
        table = currency(request.currency)
        balance = outcome.debit_balance_after_minor
        after = "unknown" if balance is None or table is None else table.units(balance)
        what = f"POSTED, {request.debit_account} balance after {after}"
    else:
        what = f"REJECTED {outcome.reason or 'without a reason'}"
    return f"{what}; payment {outcome.payment_id}{replay} in {seconds:.2f}s"


def _payment_id(given: str | None) -> str:
    if given is None:
        return str(uuid.uuid4())
    canonical = canonical_payment_id(given)
    if canonical is None:
        fail(f"eos pay: --payment-id {given!r} is not a UUID (like {uuid.uuid4()})", USAGE)
    return canonical


def _retry_hint(payment_id: str) -> str:
    return (
        f"payment {payment_id} may still be decided: run the same command again with "
        f"--payment-id {payment_id}, which is safe (the ledger decides a payment id once "
        "and answers a retry with the original outcome, marked replay)"
    )
