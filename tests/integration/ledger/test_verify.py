"""`eos verify ledger` against hand-made outputs on the real broker and registry.

No ledger processor runs here: each test writes a small, consistent set of payments,
entries, credit legs, a rejection, a duplicate input and an undecodable input with its
dead letter, optionally corrupts it, and checks that the verifier passes the clean set
and fails each corrupt one, naming the payment, entry or account at fault.
"""

from __future__ import annotations

import io
import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import fastavro
import pytest
from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from eos.cli import main
from eos.engine import dlq as h
from eos.kafka.partitioner import partition_for
from eos.ledger.settings import LedgerSettings
from eos.ledger.verify import (
    BALANCE_CHAIN,
    DEBIT_WITHOUT_CREDIT,
    DUPLICATE_ENTRY,
    LEG_WITHOUT_CREDIT_ENTRY,
    MISSING_OUTCOME,
    Report,
    verify,
)
from eos.serde.avro import AvroContract
from eos.serde.schemas import contract
from eos.serde.wire import frame
from eos.testing.cluster import KafkaCluster
from eos.testing.helpers import create_topic

PARTITIONS = 3
NOW_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@dataclass
class Books:
    """A fresh set of ledger topics and a producer that writes to them like the ledger."""

    cluster: KafkaCluster
    ledger: LedgerSettings
    dlq: str
    registry: SchemaRegistryClient
    producer: Producer
    headers_by_topic: dict[str, tuple[bytes, AvroContract]] = field(default_factory=dict)

    def register(self, topic: str, name: str) -> None:
        c = contract(name)
        schema_id = self.registry.register_schema(f"{topic}-value", Schema(c.schema_str, "AVRO"))
        self.headers_by_topic[topic] = (frame(schema_id), c)

    def avro(self, topic: str, value: dict[str, Any]) -> bytes:
        header, c = self.headers_by_topic[topic]
        buf = io.BytesIO()
        buf.write(header)
        fastavro.schemaless_writer(buf, c.parsed, value)
        return buf.getvalue()

    def send(
        self,
        topic: str,
        key: str,
        value: bytes | None,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> tuple[int, int]:
        """Produce one record and wait for it: its (partition, offset)."""
        delivered: list[tuple[KafkaError | None, Message]] = []
        kwargs: dict[str, Any] = {"key": key.encode(), "value": value}
        if partition is not None:
            kwargs["partition"] = partition
        if headers:
            kwargs["headers"] = headers
        self.producer.produce(
            topic, on_delivery=lambda err, msg: delivered.append((err, msg)), **kwargs
        )
        assert self.producer.flush(30) == 0
        err, msg = delivered[0]
        assert err is None, err
        return msg.partition() or 0, msg.offset() or 0

    # -- records as the ledger writes them ------------------------------------------------

    def payment(self, payment: dict[str, Any]) -> bytes:
        return self.avro(self.ledger.payments_topic, payment)

    def entry(self, e: dict[str, Any]) -> None:
        self.send(self.ledger.entries_topic, e["account"], self.avro(self.ledger.entries_topic, e))

    def leg(self, pay: dict[str, Any]) -> None:
        leg = {k: v for k, v in pay.items() if k != "reference"}
        value = self.avro(self.ledger.credits_topic, leg)
        self.send(self.ledger.credits_topic, pay["credit_account"], value)

    def reject(self, pay: dict[str, Any], reason: str, detail: str) -> None:
        rejection = {
            **{k: v for k, v in pay.items() if k not in ("reference", "requested_at")},
            "reason": reason,
            "detail": detail,
            "rejected_at": NOW_MS,
        }
        value = self.avro(self.ledger.rejected_topic, rejection)
        self.send(self.ledger.rejected_topic, pay["debit_account"], value)

    def balance(self, account: str, currency: str, b: int, n: int) -> None:
        self.send(
            self.ledger.balances_changelog,
            f"{account}|{currency}",
            json.dumps({"b": b, "n": n}).encode(),
            partition=partition_for(account.encode(), PARTITIONS),
        )

    def verify(self) -> Report:
        return verify(
            self.cluster.bootstrap_servers,
            self.cluster.schema_registry_url,
            self.ledger,
            self.dlq,
            timeout=60,
        )

    def run_verify(self) -> int:
        """`eos verify ledger` on these books, as a user runs it."""
        argv = [
            "verify",
            "ledger",
            "--bootstrap-servers",
            self.cluster.bootstrap_servers,
            "--schema-registry-url",
            self.cluster.schema_registry_url,
            "--dlq-topic",
            self.dlq,
        ]
        with mock.patch.dict(os.environ, self.ledger.topic_env()):
            return main(argv)


@pytest.fixture
def books(eos_cluster: KafkaCluster) -> Iterator[Books]:
    tag = uuid.uuid4().hex[:8]

    def topic(name: str, **config: str) -> str:
        return create_topic(eos_cluster, f"{name}-{tag}", PARTITIONS, config=config)

    ledger = LedgerSettings(
        payments_topic=topic("payments"),
        credits_topic=topic("ledger.credits"),
        entries_topic=topic("ledger.entries"),
        rejected_topic=topic("payments.rejected"),
        balances_changelog=topic("ledger.balances.changelog", **{"cleanup.policy": "compact"}),
        dedup_changelog=f"ledger.dedup.changelog-{tag}",  # not read by the verifier
    )
    dlq = create_topic(eos_cluster, f"eos.dlq-{tag}", 1)
    registry = SchemaRegistryClient({"url": eos_cluster.schema_registry_url, "timeout": 10})
    producer = Producer(
        eos_cluster.client_config(
            partitioner="murmur2_random", acks="all", **{"enable.idempotence": True}
        )
    )
    b = Books(eos_cluster, ledger, dlq, registry, producer)
    b.register(ledger.payments_topic, "ledger/payment_request")
    b.register(ledger.entries_topic, "ledger/ledger_entry")
    b.register(ledger.rejected_topic, "ledger/payment_rejection")
    b.register(ledger.credits_topic, "ledger/credit_leg")
    yield b
    producer.flush(10)


# -- the scenario --------------------------------------------------------------------------


def _payment(debit: str, credit: str, amount: int, currency: str) -> dict[str, Any]:
    return {
        "payment_id": str(uuid.uuid4()),
        "debit_account": debit,
        "credit_account": credit,
        "amount_minor": amount,
        "currency": currency,
        "requested_at": NOW_MS,
        "reference": "invoice 000001",
    }


def _entry(
    pay: dict[str, Any], side: str, balance_after: int, seq: int, **changes: Any
) -> dict[str, Any]:
    debit = side == "DEBIT"
    e = {
        "entry_id": f"{pay['payment_id']}:{side[0]}",
        "payment_id": pay["payment_id"],
        "account": pay["debit_account"] if debit else pay["credit_account"],
        "counterparty": pay["credit_account"] if debit else pay["debit_account"],
        "side": side,
        "currency": pay["currency"],
        "delta_minor": -pay["amount_minor"] if debit else pay["amount_minor"],
        "balance_after_minor": balance_after,
        "account_seq": seq,
        "posted_at": NOW_MS,
    }
    e.update(changes)
    return e


@dataclass
class Scenario:
    funding: dict[str, Any]  # ext:bank -> alice 100.00 EUR, posted
    transfer: dict[str, Any]  # alice -> bob 25.00 EUR, posted (and sent twice)
    overdraft: dict[str, Any]  # bob -> alice 999.99 EUR, rejected: insufficient funds
    deposit: dict[str, Any]  # ext:bank -> bob 5.00 USD, posted
    garbage_at: tuple[int, int]  # the undecodable input


def write_books(b: Books, corrupt: str | None = None) -> Scenario:
    """The inputs and the outputs a correct ledger makes of them, corrupted as asked."""
    s = Scenario(
        funding=_payment("ext:bank", "alice", 10_000, "EUR"),
        transfer=_payment("alice", "bob", 2_500, "EUR"),
        overdraft=_payment("bob", "alice", 99_999, "EUR"),
        deposit=_payment("ext:bank", "bob", 500, "USD"),
        garbage_at=(0, 0),
    )
    payments = b.ledger.payments_topic
    for pay in (s.funding, s.transfer, s.overdraft, s.deposit):
        b.send(payments, pay["debit_account"], b.payment(pay))
    b.send(payments, "alice", b.payment(s.transfer))  # a duplicate: dropped, no outcome
    garbage = b"\xff not avro at all"
    s.garbage_at = b.send(payments, "alice", garbage, headers=[("trace", b"t-1")])

    # What the ledger writes, in the order it would.
    f, t, d = s.funding, s.transfer, s.deposit
    b.entry(_entry(f, "DEBIT", -10_000, 1))
    b.leg(f)
    b.entry(_entry(f, "CREDIT", 10_000, 1))
    transfer_debit = _entry(t, "DEBIT", 7_500, 2)
    if corrupt == "wrong balance":
        transfer_debit["balance_after_minor"] = 7_400
    b.entry(transfer_debit)
    if corrupt == "duplicate entry":
        b.entry(transfer_debit)
    if corrupt != "missing credit":
        b.leg(t)
    if corrupt not in ("missing credit", "missing credit entry"):
        b.entry(_entry(t, "CREDIT", 2_500, 1))
    b.reject(s.overdraft, "INSUFFICIENT_FUNDS", "bob holds 2500 EUR, needs 99999")
    b.entry(_entry(d, "DEBIT", -500, 1))
    b.leg(d)
    b.entry(_entry(d, "CREDIT", 500, 1))
    if corrupt != "garbage not dead-lettered":
        b.send(
            b.dlq,
            "alice",
            garbage,
            headers=[
                ("trace", b"t-1"),
                (h.H_TOPIC, payments.encode()),
                (h.H_PARTITION, str(s.garbage_at[0]).encode()),
                (h.H_OFFSET, str(s.garbage_at[1]).encode()),
                (h.H_ERROR_REASON, b"NOT_WIRE_FORMAT"),
            ],
        )
    b.balance("ext:bank", "EUR", -10_000, 1)
    b.balance("alice", "EUR", 7_500, 2)
    b.balance("bob", "EUR", 2_500, 1)
    b.balance("ext:bank", "USD", -500, 1)
    b.balance("bob", "USD", 500, 1)
    return s


# -- the tests -----------------------------------------------------------------------------


def test_consistent_books_pass(books: Books, capsys: pytest.CaptureFixture[str]) -> None:
    write_books(books)

    report = books.verify()

    assert report.ok, report.render()
    assert report.summary == {
        "inputs": 6,
        "distinct payment ids": 4,
        "duplicates dropped": 1,
        "undecodable inputs": 1,
        "posted": 3,
        "rejected": 1,
        "idempotency conflicts": 0,
        "replies": 0,
        "dead-lettered": 1,
        "credit legs": 3,
        "entries": 6,
        "accounts": 3,
        "currencies": 2,
        "changelog balances": 5,
    }
    assert report.rejected_by_reason == {"INSUFFICIENT_FUNDS": 1}
    assert books.run_verify() == 0
    out = capsys.readouterr().out
    assert "verification PASSED" in out
    assert "duplicates dropped" in out


def _failed(books: Books, capsys: pytest.CaptureFixture[str]) -> tuple[Report, str]:
    report = books.verify()
    assert not report.ok
    assert books.run_verify() == 1
    out = capsys.readouterr().out
    assert f"verification FAILED: {report.violation_count} violation(s)" in out
    return report, out


def test_a_duplicated_entry_fails(books: Books, capsys: pytest.CaptureFixture[str]) -> None:
    s = write_books(books, corrupt="duplicate entry")

    report, out = _failed(books, capsys)

    entry_id = f"{s.transfer['payment_id']}:D"
    assert report.named[DUPLICATE_ENTRY] == [_only_line(out, f"entry {entry_id} appears 2 times")]
    assert f"  {DUPLICATE_ENTRY}: 1" in out
    # The copy also breaks alice's chain and the EUR books.
    assert any(entry_id in m and "alice EUR" in m for m in report.named["account_seq gap"])
    assert "EUR: entries sum to -2500, not 0" in out


def test_a_missing_credit_leg_and_entry_fails(
    books: Books, capsys: pytest.CaptureFixture[str]
) -> None:
    s = write_books(books, corrupt="missing credit")

    report, out = _failed(books, capsys)

    pid = s.transfer["payment_id"]
    assert len(report.named[DEBIT_WITHOUT_CREDIT]) == 1
    message = report.named[DEBIT_WITHOUT_CREDIT][0]
    assert pid in message and "no credit leg" in message
    assert f"  {DEBIT_WITHOUT_CREDIT}: 1" in out
    assert pid in out
    # bob's EUR balance in the changelog has no entries behind it.
    assert "account bob EUR" in out


def test_a_credit_leg_without_its_credit_entry_fails(
    books: Books, capsys: pytest.CaptureFixture[str]
) -> None:
    s = write_books(books, corrupt="missing credit entry")

    report, out = _failed(books, capsys)

    pid = s.transfer["payment_id"]
    assert len(report.named[LEG_WITHOUT_CREDIT_ENTRY]) == 1
    assert f"payment {pid}: credit leg" in report.named[LEG_WITHOUT_CREDIT_ENTRY][0]
    assert f"no credit entry {pid}:C" in out


def test_a_wrong_balance_after_fails(books: Books, capsys: pytest.CaptureFixture[str]) -> None:
    s = write_books(books, corrupt="wrong balance")

    report, out = _failed(books, capsys)

    entry_id = f"{s.transfer['payment_id']}:D"
    assert len(report.named[BALANCE_CHAIN]) == 1
    message = report.named[BALANCE_CHAIN][0]
    assert "account alice EUR" in message and entry_id in message
    assert "balance_after 7400, expected 10000 + -2500 = 7500" in message
    assert message in out
    # The changelog holds the right balance, so the last entry disagrees with it.
    assert "account alice EUR: entries end at balance 7400" in out


def test_an_undecodable_input_missing_from_the_dlq_fails(
    books: Books, capsys: pytest.CaptureFixture[str]
) -> None:
    s = write_books(books, corrupt="garbage not dead-lettered")

    report, out = _failed(books, capsys)

    p, o = s.garbage_at
    where = f"{books.ledger.payments_topic}[{p}]@{o}"
    assert len(report.named[MISSING_OUTCOME]) == 1
    assert f"undecodable input {where}" in report.named[MISSING_OUTCOME][0]
    why = "NOT_WIRE_FORMAT: magic byte is 255, expected 0"  # read unsigned
    assert f"undecodable input {where} ({why}) is not in the DLQ" in out
    assert report.violation_count == 1


def _only_line(out: str, fragment: str) -> str:
    lines = [line.strip().removeprefix("- ") for line in out.splitlines() if fragment in line]
    assert len(lines) == 1, out
    return lines[0]


def _open_transaction(books: Books, entry: dict[str, Any]) -> Producer:
    """A transaction that writes `entry` and is left open."""
    tx = Producer(
        books.cluster.client_config(
            partitioner="murmur2_random", **{"transactional.id": f"open-{uuid.uuid4().hex}"}
        )
    )
    tx.init_transactions(30)
    tx.begin_transaction()
    value = books.avro(books.ledger.entries_topic, entry)
    tx.produce(books.ledger.entries_topic, key=entry["account"].encode(), value=value)
    assert tx.flush(30) == 0
    return tx


def test_an_open_transaction_times_out_rather_than_being_skipped(
    books: Books, capsys: pytest.CaptureFixture[str]
) -> None:
    s = write_books(books)
    tx = _open_transaction(books, _entry(s.transfer, "CREDIT", 5_000, 2))
    try:
        with pytest.raises(TimeoutError, match="is a transaction left open"):
            verify(
                books.cluster.bootstrap_servers,
                books.cluster.schema_registry_url,
                books.ledger,
                books.dlq,
                timeout=3,
            )
    finally:
        tx.abort_transaction(30)
    # Aborted, the record is invisible to read_committed: the books are clean again.
    assert books.verify().ok
    capsys.readouterr()


def test_a_transaction_open_when_the_read_starts_is_waited_for(books: Books) -> None:
    s = write_books(books)
    copy = _entry(s.transfer, "CREDIT", 2_500, 1)  # bob's credit again: a duplicate entry
    tx = _open_transaction(books, copy)
    timer = threading.Timer(2.0, tx.commit_transaction, args=(30,))
    timer.start()
    try:
        report = books.verify()
    finally:
        timer.join()
    assert report.named[DUPLICATE_ENTRY] == [
        _only_line(report.render(), f"entry {copy['entry_id']} appears 2 times")
    ]
