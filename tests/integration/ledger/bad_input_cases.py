"""Records for the bad-input test: the Avro writing they need, what each category's
records look like, and where each record must end up.

Values are written by hand (the Confluent wire format and Avro's binary encoding of a
PaymentRequest) so that a category can break exactly one thing: a string's bytes, a
length, a union branch, a varint. Valid values are byte for byte what fastavro writes
(`check_writer`).
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from random import Random
from typing import Any

import fastavro

from eos.kafka.partitioner import partition_for
from eos.serde.schemas import load_schema
from eos.serde.wire import frame

DLQ, REJECTED, POSTED = "DLQ", "rejected", "posted"
NOW_MS = int(time.time() * 1000)


@dataclass(frozen=True)
class Expect:
    """Where a record must end: the DLQ with this reason header (and a message fragment,
    where the reason alone is vague), a rejection with this RejectionReason, or posted."""

    where: str
    reason: str = ""
    message: str = ""

    @property
    def label(self) -> str:
        return f"{self.where} {self.reason}".strip()


@dataclass
class Case:
    key: bytes | None
    value: bytes | None
    expect: Expect
    payment_id: str | None = None  # as rejections and entries name it, when it decodes
    partition: int | None = None  # None: the key's murmur2 partition
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    category: str = ""


# -- Avro's binary encoding, by hand ---------------------------------------------------------


def zigzag(n: int) -> int:
    return ((n << 1) ^ (n >> 63)) & 0xFFFF_FFFF_FFFF_FFFF


def long_(n: int, size: int = 0) -> bytes:
    """A long as Avro writes it; with `size`, padded to that many bytes (continuation bits
    on every byte but the last), which a spec-following reader refuses past 10 bytes."""
    return varint(zigzag(n), size)


def varint(z: int, size: int = 0) -> bytes:
    """`z` in base-128 groups, low first, however large (Avro allows up to 2^64 - 1)."""
    groups = []
    while True:
        groups.append(z & 0x7F)
        z >>= 7
        if not z and len(groups) >= size:
            break
    return bytes(g | 0x80 for g in groups[:-1]) + bytes(groups[-1:])


def str_(s: str | bytes) -> bytes:
    raw = s.encode() if isinstance(s, str) else s
    return long_(len(raw)) + raw


@dataclass(frozen=True)
class Pay:
    """A PaymentRequest's fields; bytes where a test needs bytes that are no UTF-8."""

    payment_id: str | bytes
    debit: str | bytes
    credit: str | bytes
    amount: int
    currency: str | bytes = "EUR"
    at_ms: int = NOW_MS
    reference: str | bytes | None = None
    amount_bytes: bytes | None = None  # the amount's encoding, when it is to be malformed

    def body(self) -> bytes:
        ref = b"\x00" if self.reference is None else b"\x02" + str_(self.reference)
        amount = self.amount_bytes or long_(self.amount)
        fields = (str_(self.payment_id), str_(self.debit), str_(self.credit))
        return b"".join((*fields, amount, str_(self.currency), long_(self.at_ms), ref))

    @property
    def key(self) -> bytes:
        return self.debit.encode() if isinstance(self.debit, str) else self.debit

    @property
    def pid(self) -> str | None:
        return self.payment_id if isinstance(self.payment_id, str) else None


_PAYMENT = fastavro.parse_schema(json.loads(load_schema("ledger/payment_request")))


def check_writer() -> None:
    """The hand-written encoding is fastavro's, for a payment and for the look-alike that
    appends one long."""
    at = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    value: dict[str, Any] = {
        "payment_id": "p-ü",
        "debit_account": "a",
        "credit_account": "b",
        "amount_minor": -(2**63),
        "currency": "EUR",
        "requested_at": at,
        "reference": "r",
    }
    v1 = json.loads(load_schema("ledger/payment_request"))
    lookalike = {**v1, "fields": [*v1["fields"], {"name": "extra", "type": "long"}]}
    ours = Pay("p-ü", "a", "b", -(2**63), "EUR", int(at.timestamp() * 1000), "r").body()
    for schema, extra, expected in ((v1, {}, ours), (lookalike, {"extra": 7}, ours + long_(7))):
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), {**value, **extra})
        assert buf.getvalue() == expected, (buf.getvalue(), expected)


def decodes(payload: bytes) -> bool:
    """Whether fastavro reads `payload` as a whole PaymentRequest (no bytes left over)."""
    buf = io.BytesIO(payload)
    try:
        fastavro.schemaless_reader(buf, _PAYMENT, None)
    except Exception:  # anything fastavro raises on bad bytes
        return False
    return buf.tell() == len(payload)


# -- the generator ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SchemaIds:
    payment: int  # the payments subject's schema
    lookalike: int  # the same record plus one field, under another subject
    entry: int  # the ledger entries' schema (another subject of the ledger)


@dataclass
class Maker:
    """What every category draws on: schema ids, accounts, a seeded random source."""

    ids: SchemaIds
    partitions: int
    rng: Random
    funded: list[str]
    payees: list[str]
    bad_replies: list[str]  # reply-to topics the ledger must refuse

    def uid(self) -> str:
        """A fresh lower-case UUID (the canonical form), reproducible from the seed."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def account(self) -> str:
        return self.rng.choice(self.funded)

    def payment(self, **fields: Any) -> Pay:
        """A valid payment between two funded accounts (or to a payee), then `fields`."""
        debit = self.account()
        credit = self.rng.choice([a for a in self.funded if a != debit] + self.payees)
        currency = self.rng.choice(["EUR", "USD", "JPY", "KWD"])
        amount = self.rng.randint(1, 1000)
        return replace(Pay(self.uid(), debit, credit, amount, currency), **fields)

    def framed(self, pay: Pay, schema_id: int | None = None) -> bytes:
        return frame(self.ids.payment if schema_id is None else schema_id) + pay.body()

    def case(
        self,
        pay: Pay,
        expect: Expect,
        value: bytes | None = None,
        key: bytes | str | None = "debit",
        **kw: Any,
    ) -> Case:
        """A record carrying `pay` (or `value`), keyed by its debit account by default."""
        k = pay.key if key == "debit" else key
        assert not isinstance(k, str)
        v = self.framed(pay) if value is None else value
        return Case(k, v, expect, pay.pid, **kw)

    def garbage(
        self, value: bytes | None, expect: Expect, key: bytes | str | None = "account", **kw: Any
    ) -> Case:
        """A record whose value carries no payment (no payment id to look for)."""
        k = self.account().encode() if key == "account" else key
        assert not isinstance(k, str)
        return Case(k, value, expect, None, **kw)

    def place(self, case: Case) -> Case:
        """Its partition: the one its key belongs on, unless the category chose one."""
        if case.partition is None:
            key = case.key
            case.partition = (
                self.rng.randrange(self.partitions)
                if key is None
                else partition_for(key, self.partitions)
            )
        return case


def build(
    m: Maker, catalogue: Sequence[tuple[str, int, Callable[[Maker, int], Case]]]
) -> list[Case]:
    cases = []
    for name, count, make in catalogue:
        for i in range(count):
            case = m.place(make(m, i))
            case.category = name
            cases.append(case)
    return cases


def funding(m: Maker) -> list[Case]:
    """Each funded account gets plenty in each currency the payments use."""
    amounts = {"EUR": 10**8, "USD": 10**8, "JPY": 10**6, "KWD": 10**9}  # each table's max
    pays = [
        Pay(m.uid(), "ext:bank", account, amount, code)
        for account in m.funded
        for code, amount in amounts.items()
    ]
    return [m.place(replace(m.case(p, Expect(POSTED)), category="funding")) for p in pays]
