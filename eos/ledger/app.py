"""The ledger transform: debit at the debit account's partition, credit at the credit's.

Both halves run inside the engine's transactions, so a posting, its balance change (in
the changelog) and the input offset commit together or not at all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from eos.config import EngineSettings
from eos.engine.api import InputRecord, OutputRecord, PermanentError
from eos.engine.app import App
from eos.engine.state import StateStore
from eos.errors import ConfigurationError
from eos.kafka.admin import metadata
from eos.kafka.clients import make_admin
from eos.kafka.metadata import TopicCache
from eos.kafka.partitioner import partition_for
from eos.ledger.models import (
    CreditLeg,
    LedgerEntry,
    OutcomeStatus,
    PaymentOutcome,
    PaymentRejection,
    PaymentRequest,
    RejectionReason,
    Side,
)
from eos.ledger.rules import canonical_payment_id, validate
from eos.ledger.settings import LedgerSettings
from eos.serde.schemas import contract

log = logging.getLogger("eos.ledger")

REPLY_TO = "reply-to"
CORRELATION_ID = "correlation-id"
PURGE_EVERY = 500  # records between scans for expired dedup entries


class Ledger:
    def __init__(
        self,
        settings: LedgerSettings,
        instance: str,
        partitions: int,
        topic_exists: Callable[[str], bool],
    ) -> None:
        self.settings = settings
        self.instance = instance
        self.partitions = partitions
        self.topic_exists = topic_exists
        self.forbidden_replies = settings.own_topics()
        self.balances = StateStore("balances", settings.balances_changelog)
        self.seen = StateStore("dedup", settings.dedup_changelog)
        self.duplicates = 0
        self._since_purge = 0

    def transform(self, record: InputRecord) -> list[OutputRecord]:
        self._check_partition(record)
        if record.topic == self.settings.payments_topic:
            return self.debit(record)
        return self.credit(record)

    # -- the debit side ------------------------------------------------------------------

    def debit(self, record: InputRecord) -> list[OutputRecord]:
        req: PaymentRequest = record.value
        p = record.partition
        canonical = canonical_payment_id(req.payment_id)
        if canonical is not None and canonical != req.payment_id:
            # Another spelling of the same UUID is the same payment from here on.
            req = req.model_copy(update={"payment_id": canonical})
        if self._duplicate(p, f"D:{req.payment_id}"):  # an id that is no UUID: as spelt
            return []
        reply = _header(record, REPLY_TO)
        rejection = validate(req, self.settings)
        if reply is not None and not self._reply_ok(reply):
            # Checked on every path: a reply never lands on a topic it may not.
            rejection = rejection or (
                RejectionReason.INVALID_REPLY_TO,
                f"reply-to topic {reply!r} does not exist or is not allowed",
            )
            reply = None
        if rejection is None:
            external = req.debit_account.startswith(self.settings.external_prefix)
            balance = self._balance(p, req.debit_account, req.currency)
            if not external and balance["b"] < req.amount_minor:
                rejection = (
                    RejectionReason.INSUFFICIENT_FUNDS,
                    f"{req.debit_account} holds {balance['b']} {req.currency}, "
                    f"needs {req.amount_minor}",
                )
        if rejection is not None:
            return self._reject(record, req, *rejection, reply=reply)

        entry = self._post(
            p,
            req.debit_account,
            req.credit_account,
            Side.DEBIT,
            req.currency,
            -req.amount_minor,
            req.payment_id,
        )
        leg = CreditLeg(
            payment_id=req.payment_id,
            debit_account=req.debit_account,
            credit_account=req.credit_account,
            amount_minor=req.amount_minor,
            currency=req.currency,
            requested_at=req.requested_at,
        )
        out = [
            OutputRecord(self.settings.entries_topic, req.debit_account, entry),
            OutputRecord(self.settings.credits_topic, req.credit_account, leg),
        ]
        if reply is not None:
            out.append(
                self._reply(
                    record,
                    req.payment_id,
                    OutcomeStatus.POSTED,
                    None,
                    entry.balance_after_minor,
                    reply,
                )
            )
        return out

    def _reject(
        self,
        record: InputRecord,
        req: PaymentRequest,
        reason: RejectionReason,
        detail: str,
        reply: str | None,
    ) -> list[OutputRecord]:
        rejection = PaymentRejection(
            payment_id=req.payment_id,
            debit_account=req.debit_account,
            credit_account=req.credit_account,
            amount_minor=req.amount_minor,
            currency=req.currency,
            reason=reason,
            detail=detail,
            rejected_at=_now(),
        )
        out = [OutputRecord(self.settings.rejected_topic, req.debit_account, rejection)]
        if reply is not None:
            out.append(
                self._reply(
                    record, req.payment_id, OutcomeStatus.REJECTED, reason.value, None, reply
                )
            )
        return out

    # -- the credit side -----------------------------------------------------------------

    def credit(self, record: InputRecord) -> list[OutputRecord]:
        leg: CreditLeg = record.value
        if self._duplicate(record.partition, f"C:{leg.payment_id}"):
            return []
        entry = self._post(
            record.partition,
            leg.credit_account,
            leg.debit_account,
            Side.CREDIT,
            leg.currency,
            leg.amount_minor,
            leg.payment_id,
        )
        return [OutputRecord(self.settings.entries_topic, leg.credit_account, entry)]

    # -- state -----------------------------------------------------------------------------

    def _balance(self, p: int, account: str, currency: str) -> dict[str, int]:
        value: dict[str, int] = self.balances.get(p, f"{account}|{currency}", {"b": 0, "n": 0})
        return value

    def _post(
        self,
        p: int,
        account: str,
        counterparty: str,
        side: Side,
        currency: str,
        delta: int,
        payment_id: str,
    ) -> LedgerEntry:
        balance = self._balance(p, account, currency)
        after = {"b": balance["b"] + delta, "n": balance["n"] + 1}
        self.balances.put(p, f"{account}|{currency}", after)
        return LedgerEntry(
            entry_id=f"{payment_id}:{side.value[0]}",
            payment_id=payment_id,
            account=account,
            counterparty=counterparty,
            side=side,
            currency=currency,
            delta_minor=delta,
            balance_after_minor=after["b"],
            account_seq=after["n"],
            posted_at=_now(),
        )

    def _duplicate(self, p: int, key: str) -> bool:
        """True for an id seen within the window; else remember it (in this batch)."""
        now_ms = int(time.time() * 1000)
        seen = self.seen.get(p, key)
        if seen is not None and now_ms - seen < self.settings.dedup_window_s * 1000:
            self.duplicates += 1
            first = datetime.fromtimestamp(seen / 1000, UTC).isoformat()
            log.debug("dropped duplicate %s (first seen %s)", key, first)
            if self.duplicates % 100 == 1:
                log.info(
                    "dropped %d duplicate(s) so far; latest %s, first seen %s",
                    self.duplicates,
                    key,
                    first,
                )
            return True
        self.seen.put(p, key, now_ms)
        self._since_purge += 1
        if self._since_purge >= PURGE_EVERY:
            self._since_purge = 0
            self._purge(p, now_ms)
        return False

    def _purge(self, p: int, now_ms: int) -> None:
        """Forget ids older than the window; the oldest writes come first."""
        horizon = now_ms - self.settings.dedup_window_s * 1000
        for count, (key, seen_ms) in enumerate(self.seen.committed_items(p)):
            if seen_ms >= horizon or count >= 1000:
                break
            self.seen.delete(p, key)

    # -- checks and replies ----------------------------------------------------------------

    def _check_partition(self, record: InputRecord) -> None:
        """A record on the wrong partition would split an account's state: refuse it."""
        if record.key is None:
            raise PermanentError("record has no key; payments are keyed by debit account")
        value = record.value
        expected_key = (
            value.debit_account
            if record.topic == self.settings.payments_topic
            else value.credit_account
        )
        if record.key.decode("utf-8", "replace") != expected_key:
            raise PermanentError(
                f"record key {record.key!r} is not its account {expected_key!r}: misrouted"
            )
        right = partition_for(record.key, self.partitions)
        if right != record.partition:
            raise PermanentError(
                f"record is on partition {record.partition} but its key belongs on {right}: "
                "the producer must use Kafka's default (murmur2) partitioner"
            )

    def _reply_ok(self, topic: str) -> bool:
        return (
            topic.startswith(self.settings.reply_topic_prefix)
            and topic not in self.forbidden_replies
            and self.topic_exists(topic)
        )

    def _reply(
        self,
        record: InputRecord,
        payment_id: str,
        status: OutcomeStatus,
        reason: str | None,
        balance: int | None,
        topic: str,
    ) -> OutputRecord:
        correlation = _header(record, CORRELATION_ID)
        outcome = PaymentOutcome(
            payment_id=payment_id,
            correlation_id=correlation,
            status=status,
            reason=reason,
            debit_balance_after_minor=balance,
        )
        headers = {CORRELATION_ID: correlation} if correlation else {}
        return OutputRecord(topic, payment_id, outcome, headers)


def _header(record: InputRecord, name: str) -> str | None:
    value = record.headers.get(name)
    return None if value is None else value.decode("utf-8", "replace")


def _now() -> datetime:
    return datetime.now(UTC)


def build(settings: EngineSettings) -> App:
    ledger_settings = LedgerSettings()
    admin = make_admin(settings)
    meta = metadata(admin).topics
    payments = meta.get(ledger_settings.payments_topic)
    if payments is None:
        raise ConfigurationError(
            f"topic {ledger_settings.payments_topic} does not exist; run `eos ledger setup`"
        )
    ledger = Ledger(
        ledger_settings, settings.instance_id, len(payments.partitions), TopicCache(admin)
    )
    ledger.forbidden_replies |= {settings.dlq_topic, f"{settings.dlq_topic}.replay-failed"}
    s = ledger_settings
    return App(
        name="ledger",
        transform=ledger.transform,
        inputs={
            s.payments_topic: contract("ledger/payment_request", PaymentRequest),
            s.credits_topic: contract("ledger/credit_leg", CreditLeg),
        },
        outputs={
            s.entries_topic: contract("ledger/ledger_entry", LedgerEntry),
            s.rejected_topic: contract("ledger/payment_rejection", PaymentRejection),
            s.credits_topic: contract("ledger/credit_leg", CreditLeg),
        },
        stores=(ledger.balances, ledger.seen),
        dynamic_output=contract("ledger/payment_outcome", PaymentOutcome),
        # Range gives partition p of payments and of ledger.credits to the same member.
        assignment_strategy="range",
    )
