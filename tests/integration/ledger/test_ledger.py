"""The ledger's business behaviour on the real broker: funding, currencies, every rejection
reason, duplicates, reply-to outcomes, and schema evolution."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from eos.config import EngineSettings
from eos.engine.app import build_processor
from eos.kafka.partitioner import partition_for
from eos.ledger.app import build
from eos.ledger.models import PaymentRequest
from eos.ledger.settings import LedgerSettings
from eos.ledger.setup import contracts, setup
from eos.ledger.verify import Report, verify
from eos.serde import compat
from eos.serde.avro import AvroContract, AvroDecoder, AvroEncoder
from eos.serde.schemas import contract, load_schema
from eos.testing.cluster import KafkaCluster
from eos.testing.helpers import read_committed


@dataclass
class Books:
    cluster: KafkaCluster
    engine: EngineSettings
    ledger: LedgerSettings
    reply_topic: str

    def pay(
        self,
        debit: str,
        credit: str,
        amount: int,
        currency: str = "EUR",
        payment_id: str | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        **fields: Any,
    ) -> str:
        req = PaymentRequest(
            payment_id=payment_id or str(uuid.uuid4()),
            debit_account=debit,
            credit_account=credit,
            amount_minor=amount,
            currency=currency,
            requested_at=datetime.now(UTC),
            **fields,
        )
        self.send(
            debit,
            AvroEncoder(
                self.registry(), self.ledger.payments_topic, contract("ledger/payment_request")
            ).encode(req),
            headers,
        )
        return req.payment_id

    def send(
        self,
        key: str,
        value: bytes,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> None:
        producer = Producer(
            {"bootstrap.servers": self.cluster.bootstrap_servers, "partitioner": "murmur2_random"}
        )
        where: dict[str, Any] = {} if partition is None else {"partition": partition}
        producer.produce(
            self.ledger.payments_topic,
            key=key.encode(),
            value=value,
            headers=cast(Any, headers or []),
            **where,
        )
        assert producer.flush(30) == 0

    def registry(self) -> SchemaRegistryClient:
        return SchemaRegistryClient({"url": self.cluster.schema_registry_url, "timeout": 10})

    def process(self) -> None:
        processor = build_processor(self.engine, build(self.engine), until_caught_up=True)
        assert processor.run() == 0

    def verify(self) -> Report:
        return verify(
            self.cluster.bootstrap_servers,
            self.cluster.schema_registry_url,
            self.ledger,
            self.engine.dlq_topic,
        )

    def read(self, topic: str, schema: str) -> list[Any]:
        decoder = AvroDecoder(self.registry(), contract(schema))
        return [decoder.decode(m.value()) for m in read_committed(self.cluster, topic)]


@pytest.fixture
def books(eos_cluster: KafkaCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[Books]:
    tag = f"lt-{uuid.uuid4().hex[:8]}"
    for name, value in LedgerSettings.with_prefix(tag).topic_env().items():
        monkeypatch.setenv(name, value)
    engine = EngineSettings(
        bootstrap_servers=eos_cluster.bootstrap_servers,
        schema_registry_url=eos_cluster.schema_registry_url,
        group_id=f"{tag}-ledger",
        dlq_topic=f"{tag}.dlq",
        instance_id="t1",
        transactional_id_prefix=tag,
        batch_max_ms=50,
    )
    setup(engine, partitions=3, replication=1)
    reply = f"replies.{tag}"
    admin = AdminClient({"bootstrap.servers": eos_cluster.bootstrap_servers})
    admin.create_topics([NewTopic(reply, 1, 1)])[reply].result(30)
    yield Books(eos_cluster, engine, LedgerSettings(), reply)


def test_funding_currencies_rejections_duplicates_and_replies(books: Books) -> None:
    books.pay("ext:bank", "alice", 1000, "EUR")
    books.pay("ext:bank", "alice", 500, "USD")
    books.process()  # the funding credits land before alice spends

    eur = books.pay("alice", "bob", 300, "EUR")
    usd = books.pay(
        "alice",
        "bob",
        200,
        "USD",
        headers=[("reply-to", books.reply_topic.encode()), ("correlation-id", b"c-1")],
    )
    books.pay("alice", "bob", 300, "EUR", payment_id=eur)  # a duplicate from upstream
    expected = {
        books.pay("alice", "bob", 1, payment_id="not-a-uuid"): "INVALID_ID",
        books.pay("alice", "b o b", 1): "INVALID_ACCOUNT",
        books.pay("alice", "alice", 1): "SAME_ACCOUNT",
        books.pay("alice", "bob", 0): "INVALID_AMOUNT",
        books.pay("alice", "bob", 10**12): "AMOUNT_TOO_LARGE",
        books.pay("alice", "bob", 1, "XQZ"): "UNKNOWN_CURRENCY",
        books.pay("alice", "bob", 1, "GBP"): "INSUFFICIENT_FUNDS",  # no GBP at all
        books.pay("alice", "bob", 10_000, "EUR"): "INSUFFICIENT_FUNDS",
        books.pay(
            "alice", "bob", 1, headers=[("reply-to", b"replies.no-such-topic")]
        ): "INVALID_REPLY_TO",
    }
    books.process()

    rejections = books.read(books.ledger.rejected_topic, "ledger/payment_rejection")
    assert {r["payment_id"]: r["reason"] for r in rejections} == expected
    assert len(rejections) == len(expected)

    entries = books.read(books.ledger.entries_topic, "ledger/ledger_entry")
    chains: dict[tuple[str, str], list[tuple[int, int, int]]] = {}
    for e in entries:
        chains.setdefault((e["account"], e["currency"]), []).append(
            (e["account_seq"], e["delta_minor"], e["balance_after_minor"])
        )
    assert chains[("alice", "EUR")] == [(1, 1000, 1000), (2, -300, 700)]
    assert chains[("alice", "USD")] == [(1, 500, 500), (2, -200, 300)]
    assert chains[("bob", "EUR")] == [(1, 300, 300)]
    assert chains[("bob", "USD")] == [(1, 200, 200)]
    # The external account funds the others and may go below zero.
    assert chains[("ext:bank", "EUR")] == [(1, -1000, -1000)]
    assert [e["payment_id"] for e in entries].count(eur) == 2  # debit + credit, once

    replies = books.read(books.reply_topic, "ledger/payment_outcome")
    assert replies == [
        {
            "payment_id": usd,
            "correlation_id": "c-1",
            "status": "POSTED",
            "reason": None,
            "debit_balance_after_minor": 300,
            "replay": False,
        }
    ]

    report = books.verify()
    assert report.ok, report.render()
    assert report.duplicates == 1


def test_schema_evolution_v1_and_v2_payments_are_both_processed(books: Books) -> None:
    books.pay("ext:bank", "carol", 1000)
    books.process()
    v1_id = books.pay("carol", "dave", 10)

    v1 = json.loads(load_schema("ledger/payment_request"))
    v2 = {
        **v1,
        "fields": [*v1["fields"], {"name": "channel", "type": ["null", "string"], "default": None}],
    }
    subject = f"{books.ledger.payments_topic}-value"
    registry = books.registry()
    # The topic's subject has BACKWARD compatibility; an optional field is allowed.
    registry.register_schema(subject, Schema(json.dumps(v2), "AVRO"))
    encoder = AvroEncoder(registry, books.ledger.payments_topic, AvroContract(json.dumps(v2)))
    v2_id = str(uuid.uuid4())
    books.send(
        "carol",
        encoder.encode(
            {
                "payment_id": v2_id,
                "debit_account": "carol",
                "credit_account": "dave",
                "amount_minor": 20,
                "currency": "EUR",
                "requested_at": datetime.now(UTC),
                "reference": None,
                "channel": "mobile",
            }
        ),
    )
    books.process()

    debits = [
        e
        for e in books.read(books.ledger.entries_topic, "ledger/ledger_entry")
        if e["account"] == "carol" and e["side"] == "DEBIT"
    ]
    assert [e["payment_id"] for e in debits] == [v1_id, v2_id]
    assert debits[-1]["balance_after_minor"] == 970

    # `eos schemas check`: schemas/ is compatible; a required new field is not.
    local = contracts(books.ledger)
    assert all(r.ok for r in compat.check(registry, local))
    v3 = {**v2, "fields": [*v2["fields"], {"name": "branch", "type": "string"}]}
    broken = {**local, books.ledger.payments_topic: AvroContract(json.dumps(v3))}
    results = {r.subject: r for r in compat.check(registry, broken)}
    assert results[subject].status == "INCOMPATIBLE"


def test_another_spelling_of_a_payment_id_is_the_same_payment(books: Books) -> None:
    books.pay("ext:bank", "carol", 1000)
    books.process()
    pid = str(uuid.uuid4())
    books.pay("carol", "dave", 100, payment_id=pid)
    books.pay("carol", "dave", 100, payment_id=pid.upper())  # UUIDs are case-insensitive
    mixed = str(uuid.uuid4())
    books.pay("carol", "dave", 5, payment_id=mixed.upper())  # first seen in upper case
    books.process()

    entries = books.read(books.ledger.entries_topic, "ledger/ledger_entry")
    posted = [e["payment_id"] for e in entries if e["payment_id"].lower() in (pid, mixed)]
    assert sorted(posted) == sorted([pid, pid, mixed, mixed])  # once each, canonical form
    carol = [e["balance_after_minor"] for e in entries if e["account"] == "carol"]
    assert carol[-1] == 895
    report = books.verify()
    assert report.ok, report.render()
    assert report.duplicates == 1


def test_an_account_with_a_trailing_newline_is_refused(books: Books) -> None:
    books.pay("ext:bank", "carol", 1000)
    books.process()
    newline = books.pay("carol", "probe-acct-2\n", 10)
    books.process()
    rejections = books.read(books.ledger.rejected_topic, "ledger/payment_rejection")
    assert [(r["payment_id"], r["reason"]) for r in rejections] == [(newline, "INVALID_ACCOUNT")]
    entries = books.read(books.ledger.entries_topic, "ledger/ledger_entry")
    assert not [e for e in entries if e["account"].startswith("probe-acct-2")]


def test_a_record_framed_with_another_subjects_schema_is_dead_lettered(books: Books) -> None:
    books.pay("ext:bank", "carol", 1000)
    books.process()
    v1 = json.loads(load_schema("ledger/payment_request"))
    # Same record name, one extra field: it would decode by schema resolution.
    lookalike = {**v1, "fields": [*v1["fields"], {"name": "extra", "type": "long"}]}
    registry = books.registry()
    other = f"{books.ledger.payments_topic}.other-value"
    schema_id = registry.register_schema(other, Schema(json.dumps(lookalike), "AVRO"))
    payload = {
        "payment_id": str(uuid.uuid4()),
        "debit_account": "carol",
        "credit_account": "dave",
        "amount_minor": 10,
        "currency": "EUR",
        "requested_at": datetime.now(UTC),
        "reference": None,
        "extra": 1,
    }
    encoder = AvroEncoder(
        registry, "", AvroContract(json.dumps(lookalike)), auto_register=True, subject=other
    )
    books.send("carol", encoder.encode(payload))
    books.process()

    dead = read_committed(books.cluster, books.engine.dlq_topic)
    reasons = [dict(m.headers() or []).get("eos.dlq.error.reason") for m in dead]
    assert reasons == [b"WRONG_SUBJECT"], reasons
    entries = books.read(books.ledger.entries_topic, "ledger/ledger_entry")
    assert not [e for e in entries if e["payment_id"] == payload["payment_id"]]
    assert schema_id > 0


def _asking(correlation: str, books: Books) -> list[tuple[str, bytes]]:
    return [("reply-to", books.reply_topic.encode()), ("correlation-id", correlation.encode())]


def test_a_retry_is_answered_again_and_a_reuse_with_other_fields_is_refused(
    books: Books,
) -> None:
    books.pay("ext:bank", "erin", 1000)
    books.process()
    pid = books.pay("erin", "frank", 100, headers=_asking("c-1", books))
    books.pay("erin", "frank", 100, payment_id=pid, headers=_asking("c-2", books))
    books.pay("erin", "frank", 101, payment_id=pid, headers=_asking("c-3", books))
    poor = books.pay("erin", "frank", 10**6, headers=_asking("c-4", books))
    books.process()
    books.pay("ext:bank", "erin", 10**7)
    books.process()
    books.pay("erin", "frank", 10**6, payment_id=poor, headers=_asking("c-5", books))
    books.process()

    replies = {
        r["correlation_id"]: (r["payment_id"], r["status"], r["reason"], r["replay"])
        for r in books.read(books.reply_topic, "ledger/payment_outcome")
    }
    assert replies == {
        "c-1": (pid, "POSTED", None, False),
        "c-2": (pid, "POSTED", None, True),
        "c-3": (pid, "REJECTED", "IDEMPOTENCY_CONFLICT", False),
        "c-4": (poor, "REJECTED", "INSUFFICIENT_FUNDS", False),
        "c-5": (poor, "REJECTED", "INSUFFICIENT_FUNDS", True),  # the decision stands
    }
    entries = books.read(books.ledger.entries_topic, "ledger/ledger_entry")
    assert sorted(e["delta_minor"] for e in entries if e["payment_id"] == pid) == [-100, 100]
    assert not [e for e in entries if e["payment_id"] == poor]
    report = books.verify()
    assert report.ok, report.render()
    assert report.summary["idempotency conflicts"] == 1
    assert report.summary["replies"] == 5


def test_the_books_verify_after_a_dead_letter_is_replayed(books: Books) -> None:
    books.pay("ext:bank", "gina", 1000)
    books.process()
    req = PaymentRequest(
        payment_id=str(uuid.uuid4()),
        debit_account="gina",
        credit_account="hal",
        amount_minor=250,
        currency="EUR",
        requested_at=datetime.now(UTC),
    )
    value = AvroEncoder(
        books.registry(), books.ledger.payments_topic, contract("ledger/payment_request")
    ).encode(req)
    right = partition_for(b"gina", 3)
    books.send("gina", value, partition=(right + 1) % 3)  # a producer with another partitioner
    books.process()
    assert not books.verify().posted - 1  # only the funding: the stray one is dead-lettered

    replay = subprocess.run(
        [
            sys.executable,
            "-m",
            "eos",
            "dlq",
            "replay",
            "--bootstrap-servers",
            books.cluster.bootstrap_servers,
            "--schema-registry-url",
            books.cluster.schema_registry_url,
            "--group-id",
            books.engine.group_id,
            "--dlq-topic",
            books.engine.dlq_topic,
            "--transactional-id-prefix",
            books.engine.group_id,
            "--instance-id",
            "replayer",
            "--batch-max-ms",
            "50",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert replay.returncode == 0, replay.stderr[-2000:]
    books.process()  # the replayed record, now on its key's partition, is posted

    entries = books.read(books.ledger.entries_topic, "ledger/ledger_entry")
    assert sorted(e["delta_minor"] for e in entries if e["payment_id"] == req.payment_id) == [
        -250,
        250,
    ]
    report = books.verify()
    assert report.ok, report.render()
    assert (report.posted, report.dead_lettered) == (2, 1)
