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
from eos.ledger.dedup import Decision, Dedup, request_fingerprint
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
        self.seen = StateStore("dedup", settings.dedup_changelog, ordered=True)
        self.dedup = Dedup(self.seen, settings.dedup_window_s)
        self.duplicates = 0

    def transform(self, record: InputRecord) -> list[OutputRecord]:
        self._check_partition(record)
        if record.topic == self.settings.payments_topic:
            return self.debit(record)
        return self.credit(record)

    # -- the debit side ------------------------------------------------------------------

    def debit(self, record: InputRecord) -> list[OutputRecord]:
        """Answer a retry of a decided id from the dedup store; decide a new one."""
        req: PaymentRequest = record.value
        p = record.partition
        canonical = canonical_payment_id(req.payment_id)
        if canonical is not None and canonical != req.payment_id:
            # Another spelling of the same UUID is the same payment from here on.
            req = req.model_copy(update={"payment_id": canonical})
        now_ms = int(time.time() * 1000)
        key = f"D:{req.payment_id}"  # an id that is no UUID: as spelt
        digest = request_fingerprint(
            req.debit_account, req.credit_account, req.amount_minor, req.currency, req.reference
        )
        prior = self.dedup.decision(p, key, now_ms)
        if prior is not None:
            return self._retry(record, req, key, prior, digest)
        out, (status, reason, balance) = self._decide(record, req)
        self.dedup.remember(p, key, now_ms, Decision(now_ms, digest, status, reason, balance))
        return out

    def _decide(
        self, record: InputRecord, req: PaymentRequest
    ) -> tuple[list[OutputRecord], tuple[str, str | None, int | None]]:
        """Post or reject a payment seen for the first time; its outputs and outcome."""
        p = record.partition
        target, refused = self._reply_to(record)
        rejection = validate(req, self.settings)
        if refused is not None:
            rejection = rejection or (
                RejectionReason.INVALID_REPLY_TO,
                f"reply-to topic {refused!r} does not exist or is not allowed",
            )
        balance = None
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
            out = self._reject(record, req, *rejection, reply=target)
            return out, (OutcomeStatus.REJECTED.value, rejection[0].value, None)

        entry = self._post(
            p,
            req.debit_account,
            req.credit_account,
            Side.DEBIT,
            req.currency,
            -req.amount_minor,
            req.payment_id,
            balance,
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
        balance_after = entry.balance_after_minor
        if target is not None:
            out.append(
                self._reply(
                    record, req.payment_id, OutcomeStatus.POSTED, None, balance_after, target
                )
            )
        return out, (OutcomeStatus.POSTED.value, None, balance_after)

    def _retry(
        self, record: InputRecord, req: PaymentRequest, key: str, prior: Decision, digest: str
    ) -> list[OutputRecord]:
        """A decided id again: the same request gets its first answer again (marked a
        replay); another request under the same id is refused, the first decision stands."""
        self._count_duplicate(key, prior.seen_ms)
        target, _refused = self._reply_to(record)
        if prior.fingerprint and prior.fingerprint != digest:
            first = datetime.fromtimestamp(prior.seen_ms / 1000, UTC).isoformat()
            detail = (
                f"payment id {req.payment_id} was used on {first} for a payment with other "
                "fields; that payment stands: send a new payment under a new id"
            )
            return self._reject(
                record, req, RejectionReason.IDEMPOTENCY_CONFLICT, detail, reply=target
            )
        if target is None or prior.status is None:
            return []  # no one to answer, or decided before outcomes were kept
        status = OutcomeStatus(prior.status)
        return [
            self._reply(
                record,
                req.payment_id,
                status,
                prior.reason,
                prior.balance_after,
                target,
                replay=True,
            )
        ]

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
        now_ms = int(time.time() * 1000)
        key = f"C:{leg.payment_id}"
        prior = self.dedup.decision(record.partition, key, now_ms)
        if prior is not None:
            self._count_duplicate(key, prior.seen_ms)
            return []
        self.dedup.remember(record.partition, key, now_ms)
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
        balance: dict[str, int] | None = None,
    ) -> LedgerEntry:
        """Stage the account's new balance; its entry. `balance`: the account's current
        one, when the caller has just read it."""
        if balance is None:
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

    def _count_duplicate(self, key: str, seen_ms: int) -> None:
        self.duplicates += 1
        first = datetime.fromtimestamp(seen_ms / 1000, UTC).isoformat()
        log.debug("duplicate %s (first seen %s)", key, first)
        if self.duplicates % 100 == 1:
            log.info(
                "%d duplicate(s) so far; latest %s, first seen %s", self.duplicates, key, first
            )

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
        # Bytes, not a lossy decoding: b"\xff" must not pass as the key of "\ufffd".
        if record.key != expected_key.encode("utf-8", "surrogatepass"):
            raise PermanentError(
                f"record key {record.key!r} is not its account {expected_key!r}: misrouted"
            )
        right = partition_for(record.key, self.partitions)
        if right != record.partition:
            raise PermanentError(
                f"record is on partition {record.partition} but its key belongs on {right}: "
                "the producer must use Kafka's default (murmur2) partitioner"
            )

    def _reply_to(self, record: InputRecord) -> tuple[str | None, str | None]:
        """(where to answer, a reply-to topic refused). Checked on every path: a reply
        never lands on a topic it may not."""
        topic = _header(record, REPLY_TO)
        if topic is None or self._reply_ok(topic):
            return topic, None
        return None, topic

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
        replay: bool = False,
    ) -> OutputRecord:
        correlation = _header(record, CORRELATION_ID)
        outcome = PaymentOutcome(
            payment_id=payment_id,
            correlation_id=correlation,
            status=status,
            reason=reason,
            debit_balance_after_minor=balance,
            replay=replay,
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
    ledger.forbidden_replies = ledger_settings.no_reply_topics(settings.dlq_topic)
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
        # Cooperative: a rebalance moves only the partitions that change hands. Partition
        # p of ledger.credits follows payments' p (eos.engine.rebalance).
        assignment_strategy="cooperative-sticky",
    )
