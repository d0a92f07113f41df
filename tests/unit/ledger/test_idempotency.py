"""A payment id decided once is answered the same way again: the ledger's transform with
its stores in memory (each record committed on its own, as a batch of one)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from eos.engine.api import InputRecord, OutputRecord, PermanentError
from eos.engine.state import StateStore
from eos.ledger import app as ledger_app
from eos.ledger.app import CORRELATION_ID, REPLY_TO, Ledger
from eos.ledger.dedup import PURGE_EVERY
from eos.ledger.models import PaymentOutcome, PaymentRejection, PaymentRequest
from eos.ledger.settings import LedgerSettings
from tests.unit.stores import make_ready

REPLIES = "replies.client"
FUNDS = "ext:bank"


class Books:
    def __init__(self, window_s: int = 3600) -> None:
        settings = LedgerSettings(dedup_window_s=window_s)
        self.s = settings
        self.ledger = Ledger(settings, "i", 1, lambda topic: True)
        for store in (self.ledger.balances, self.ledger.seen):
            make_ready(store, [0])
        self.offset = 0

    def send(
        self, req: PaymentRequest, correlation: str | None = None, reply: bool = True
    ) -> list[OutputRecord]:
        headers = {REPLY_TO: REPLIES.encode()} if reply else {}
        if correlation:
            headers[CORRELATION_ID] = correlation.encode()
        out = self._process(self.s.payments_topic, req.debit_account, req, headers)
        for leg in [o for o in out if o.topic == self.s.credits_topic]:
            self._process(leg.topic, leg.value.credit_account, leg.value, {})
        return out

    def _process(
        self, topic: str, key: str, value: Any, headers: dict[str, bytes]
    ) -> list[OutputRecord]:
        self.offset += 1
        record = InputRecord(topic, 0, self.offset, 0, key.encode(), value, headers)
        out = self.ledger.transform(record)
        for store in (self.ledger.balances, self.ledger.seen):
            store.end_record(True)
            store.commit_batch()
        return out

    def reply(self, out: list[OutputRecord]) -> PaymentOutcome:
        [answer] = [o.value for o in out if o.topic == REPLIES]
        assert isinstance(answer, PaymentOutcome)
        return answer

    def balance(self, account: str) -> Any:
        return self.ledger.balances.get(0, f"{account}|EUR", {"b": 0})["b"]


def payment(
    debit: str = "acct-1", amount: int = 500, pid: str | None = None, **more: Any
) -> PaymentRequest:
    return PaymentRequest(
        payment_id=pid or str(uuid.uuid4()),
        debit_account=debit,
        credit_account=more.pop("credit", "acct-2"),
        amount_minor=amount,
        currency="EUR",
        requested_at=more.pop("at", datetime.now(UTC)),
        **more,
    )


@pytest.fixture(autouse=True)
def _one_partition(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every account on partition 0: the store holds one partition here.
    monkeypatch.setattr(ledger_app, "partition_for", lambda key, n: 0)


def test_a_retry_gets_the_original_outcome_again_marked_as_a_replay() -> None:
    books = Books()
    books.send(payment(FUNDS, 1000, credit="acct-1"))
    first = payment()
    posted = books.reply(books.send(first, correlation="c-1"))
    out = books.send(first, correlation="c-2")
    again = books.reply(out)
    assert [o.topic for o in out] == [REPLIES]  # no second entry, no second credit leg
    assert (again.status, again.debit_balance_after_minor) == ("POSTED", 500)
    assert (posted.replay, again.replay) == (False, True)
    assert again.correlation_id == "c-2"  # the retry's own, so its sender can match it
    assert books.balance("acct-1") == 500


def test_a_retried_rejection_stays_rejected_even_once_funds_arrive() -> None:
    books = Books()
    first = payment(amount=700)
    rejected = books.reply(books.send(first))
    books.send(payment(FUNDS, 1000, credit="acct-1"))
    again = books.reply(books.send(first))
    assert (rejected.status, rejected.reason) == ("REJECTED", "INSUFFICIENT_FUNDS")
    assert (again.status, again.reason, again.replay) == ("REJECTED", "INSUFFICIENT_FUNDS", True)
    assert books.balance("acct-1") == 1000


@pytest.mark.parametrize(
    "change",
    [
        {"amount": 501},
        {"credit": "acct-3"},
        {"reference": "another invoice"},
    ],
)
def test_the_same_id_with_other_fields_is_refused_and_the_first_payment_stands(
    change: dict[str, Any],
) -> None:
    books = Books()
    books.send(payment(FUNDS, 1000, credit="acct-1"))
    first = payment()
    books.send(first)
    out = books.send(payment(pid=first.payment_id, **change))
    [rejection] = [o.value for o in out if o.topic == books.s.rejected_topic]
    assert isinstance(rejection, PaymentRejection)
    assert rejection.reason == "IDEMPOTENCY_CONFLICT"
    answer = books.reply(out)
    assert (answer.status, answer.reason, answer.replay) == (
        "REJECTED",
        "IDEMPOTENCY_CONFLICT",
        False,
    )
    assert books.balance("acct-1") == 500  # debited once, by the first
    assert not [o for o in out if o.topic == books.s.entries_topic]


def test_a_retry_stamped_at_another_time_is_the_same_payment() -> None:
    books = Books()
    books.send(payment(FUNDS, 1000, credit="acct-1"))
    first = payment()
    books.send(first)
    later = first.model_copy(update={"requested_at": first.requested_at + timedelta(minutes=5)})
    assert books.reply(books.send(later)).replay


def test_an_upper_case_retry_is_answered_as_the_same_payment() -> None:
    books = Books()
    books.send(payment(FUNDS, 1000, credit="acct-1"))
    first = payment()
    books.send(first)
    again = books.reply(books.send(payment(pid=first.payment_id.upper())))
    assert (again.payment_id, again.replay) == (first.payment_id, True)


def test_a_duplicate_without_reply_to_writes_nothing() -> None:
    books = Books()
    books.send(payment(FUNDS, 1000, credit="acct-1"))
    first = payment()
    books.send(first, reply=False)
    assert books.send(first, reply=False) == []
    assert books.ledger.duplicates == 1


def test_an_id_outside_the_window_is_decided_anew(monkeypatch: pytest.MonkeyPatch) -> None:
    books = Books(window_s=60)
    books.send(payment(FUNDS, 1000, credit="acct-1"))
    first = payment()
    books.send(first)
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 61)
    again = books.reply(books.send(first))
    assert (again.status, again.replay) == ("POSTED", False)
    assert books.balance("acct-1") == 0


def test_an_id_remembered_as_a_bare_timestamp_is_still_a_duplicate() -> None:
    # Dedup changelogs written before outcomes were kept hold "seen at" only.
    books = Books()
    first = payment()
    _commit(books.ledger.seen, {f"D:{first.payment_id}": int(time.time() * 1000)})
    assert books.send(first) == []
    assert books.ledger.duplicates == 1


def test_expired_ids_are_purged_whatever_their_form(monkeypatch: pytest.MonkeyPatch) -> None:
    books = Books(window_s=60)
    old_ms = int((time.time() - 120) * 1000)
    old = {"t": old_ms, "f": "x", "s": "POSTED", "r": None, "b": 1}
    _commit(books.ledger.seen, {"D:old-bare": old_ms, "D:old-kept": old})
    books.send(payment(FUNDS, 10**6, credit="acct-1"))
    for _ in range(PURGE_EVERY):
        books.send(payment(amount=1), reply=False)
    seen = dict(books.ledger.seen.committed_items(0))
    assert "D:old-bare" not in seen and "D:old-kept" not in seen
    assert len(seen) == 2 * (PURGE_EVERY + 1)  # a debit and a credit id per payment


def test_the_store_is_walked_for_expired_ids_only_once_its_oldest_could_be(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    books = Books(window_s=60)
    walks: list[int] = []
    walk = books.ledger.seen.committed_items

    def counted(partition: int) -> Any:
        walks.append(partition)
        return walk(partition)

    monkeypatch.setattr(books.ledger.seen, "committed_items", counted)
    books.send(payment(FUNDS, 10**6, credit="acct-1"))
    for _ in range(PURGE_EVERY):
        books.send(payment(amount=1), reply=False)  # two ids each: two purges due
    assert len(walks) == 1  # the oldest id expires in 60 s: no walk before then
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    for _ in range(PURGE_EVERY // 2):
        books.send(payment(amount=1), reply=False)
    assert len(walks) == 2
    # That walk deleted expired ids (up to its cap of 1000).
    assert len(dict(walk(0))) <= 2 * (PURGE_EVERY + 1) + PURGE_EVERY - 1000


def _commit(store: StateStore, values: dict[str, Any]) -> None:
    """Values as if an earlier transaction had committed them."""
    for key, value in values.items():
        store.put(0, key, value)
    store.end_record(True)
    store.commit_batch()


def test_a_key_that_is_not_utf8_is_misrouted_not_an_account() -> None:
    books = Books()
    req = payment(debit="\ufffd")
    record = InputRecord(books.s.payments_topic, 0, 0, 0, b"\xff", req, {})
    with pytest.raises(PermanentError, match="misrouted"):
        books.ledger.transform(record)
