"""Every kind of bad input the test sends, with its count and where it must end.

Each category is a function of (maker, i) that makes its i-th record; `i` cycles through
the category's variants. Undecodable values and misrouted records go to the DLQ (reason
header as eos.serde and eos.engine name it); decodable payments that break a rule are
rejected with the RejectionReason of the first rule they break (eos/ledger/rules.py).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import fastavro

from eos.engine.dlq import H_ERROR_REASON, H_OFFSET, H_PARTITION, H_TOPIC
from eos.kafka.partitioner import partition_for
from eos.ledger.currencies import CURRENCIES
from eos.serde.schemas import load_schema
from eos.serde.wire import frame
from tests.integration.ledger.bad_input_cases import (
    DLQ,
    POSTED,
    REJECTED,
    Case,
    Expect,
    Maker,
    Pay,
    decodes,
    long_,
    str_,
    varint,
    zigzag,
)

Make = Callable[[Maker, int], Case]

NOT_WIRE = Expect(DLQ, "NOT_WIRE_FORMAT")
MALFORMED = Expect(DLQ, "MALFORMED_AVRO")
YEAR_1_MS, YEAR_9999_END_MS = -62_135_596_800_000, 253_402_300_799_999


def rejected(reason: str) -> Expect:
    return Expect(REJECTED, reason)


def pick(i: int, *options: str) -> str:
    return options[i % len(options)]


# -- not the wire format ---------------------------------------------------------------------


def wrong_magic(m: Maker, i: int) -> Case:
    if i % 6 == 5:  # JSON text: its first byte is '{'
        return m.garbage(json.dumps({"payment_id": m.uid(), "amount_minor": 1}).encode(), NOT_WIRE)
    magic = (0xB5, 0x01, 0xFF, 0x80, 0x02)[i % 5]
    pay = m.payment()
    return m.case(pay, NOT_WIRE, value=bytes([magic]) + m.framed(pay)[1:])


def short_value(m: Maker, i: int) -> Case:
    size = 1 + i % 4
    value = b"\x00" * size if i % 2 else m.rng.randbytes(size)
    return m.garbage(value, NOT_WIRE)


def spoofed_headers(m: Maker, i: int) -> Case:
    """Input headers that pose as the DLQ's provenance: the dead letter must name the
    record's real place, not these."""
    fake = {H_TOPIC: b"somewhere.else", H_PARTITION: b"99", H_OFFSET: b"12345"}
    headers = [*fake.items(), (H_ERROR_REASON, b"FAKE"), ("x-trace", b"t-%d" % i)]
    return m.garbage(b"\xb5" + m.rng.randbytes(20), NOT_WIRE, headers=headers)


# -- schema ids ------------------------------------------------------------------------------


def unknown_schema(m: Maker, i: int) -> Case:
    schema_id = (0, 999_999_999, 2**31 - 1, 2**31, 2**32 - 1)[i % 5]
    pay = m.payment()
    return m.case(pay, Expect(DLQ, "UNKNOWN_SCHEMA"), value=m.framed(pay, schema_id))


def lookalike_subject(m: Maker, i: int) -> Case:
    pay = m.payment()  # the look-alike is the payment plus one long
    value = frame(m.ids.lookalike) + pay.body() + long_(i)
    return m.case(pay, Expect(DLQ, "WRONG_SUBJECT"), value=value)


_ENTRY = fastavro.parse_schema(json.loads(load_schema("ledger/ledger_entry")))


def entry_subject(m: Maker, i: int) -> Case:
    pid, account = m.uid(), m.account()
    entry = {
        "entry_id": f"{pid}:D",
        "payment_id": pid,
        "account": account,
        "counterparty": m.account(),
        "side": "DEBIT",
        "currency": "EUR",
        "delta_minor": -1 - i,
        "balance_after_minor": 0,
        "account_seq": 1,
        "posted_at": datetime.now(UTC),
    }
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, _ENTRY, entry)
    value = frame(m.ids.entry) + buf.getvalue()
    return Case(account.encode(), value, Expect(DLQ, "WRONG_SUBJECT"), pid)


# -- malformed Avro --------------------------------------------------------------------------


def _undecodable(m: Maker, pay: Pay, payload: Callable[[], bytes]) -> Case:
    """A record whose payload, drawn until fastavro refuses it, follows a valid header."""
    body = payload()
    while decodes(body):
        body = payload()
    return m.case(pay, MALFORMED, value=frame(m.ids.payment) + body)


def truncated(m: Maker, i: int) -> Case:
    pay = m.payment()
    body = pay.body()
    return _undecodable(m, pay, lambda: body[: m.rng.randrange(len(body))])


def random_payload(m: Maker, i: int) -> Case:
    pay = m.payment()
    return _undecodable(m, pay, lambda: m.rng.randbytes(m.rng.randint(1, 200)))


def trailing_bytes(m: Maker, i: int) -> Case:
    pay = m.payment()
    return m.case(pay, MALFORMED, value=m.framed(pay) + m.rng.randbytes(1 + i % 64))


def bad_utf8(m: Maker, i: int) -> Case:
    bad = (b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"acct-\x80", b"\xf8\x88\x80\x80\x80")[i % 5]
    name = pick(i // 5, "payment_id", "debit", "credit", "currency", "reference")
    fields = {name: bad}
    pay = m.payment(**fields)
    return m.case(pay, MALFORMED, key=m.account().encode())


def union_out_of_range(m: Maker, i: int) -> Case:
    pay = m.payment()
    branch = (2, 3, 64, 1000)[i % 4]
    return m.case(pay, MALFORMED, value=m.framed(pay)[:-1] + long_(branch) + str_("ref"))


def negative_union(m: Maker, i: int) -> Case:
    """The union has branches 0 and 1; -1 and -2 name none (Python's list[-1] does)."""
    pay = m.payment()
    tail = long_(-1) + str_("ref") if i % 2 else long_(-2)
    return m.case(pay, MALFORMED, value=m.framed(pay)[:-1] + tail)


def bad_length(m: Maker, i: int) -> Case:
    pay = m.payment()
    length = (-1, -2, -(2**40), 2**40, 2**31)[i % 5]
    rest = pay.body()[len(str_(pay.payment_id)) :]
    return _undecodable(m, pay, lambda: long_(length) + str(pay.payment_id).encode() + rest)


def timestamp_out_of_range(m: Maker, i: int) -> Case:
    """Valid longs that no datetime holds (after 9999, before year 1)."""
    at = (YEAR_9999_END_MS + 1, 2**63 - 1, -(2**63), YEAR_1_MS - 1, 10**16)[i % 5]
    return m.case(m.payment(at_ms=at), MALFORMED)


def overlong_varint(m: Maker, i: int) -> Case:
    """An amount in 11 to 20 bytes: Avro longs take at most 10 (Java's decoder refuses
    more: "Invalid long encoding"). Half pad a small valid amount with zero groups, half
    add 2^70 to it: a number no long holds."""
    pay = m.payment()
    z = zigzag(pay.amount) + (2**70 * (1 + i % 7) if i % 2 else 0)
    return m.case(replace(pay, amount_bytes=varint(z, 11 + i % 10)), MALFORMED)


# -- keys and partitions ---------------------------------------------------------------------


def null_key(m: Maker, i: int) -> Case:
    return m.case(m.payment(), Expect(DLQ, "PERMANENT", "has no key"), key=None)


def misrouted(m: Maker, i: int) -> Case:
    pay = m.payment()
    debit = str(pay.debit)
    other = next(a for a in m.funded if a != debit)
    key = (other, debit + "\n", debit.upper(), "", debit + " ", "\x00" + debit)[i % 6]
    return m.case(pay, Expect(DLQ, "PERMANENT", "misrouted"), key=key.encode())


def key_not_utf8(m: Maker, i: int) -> Case:
    """A key that is not UTF-8 is not the UTF-8 of any account, even one spelt with
    U+FFFD where its invalid bytes were."""
    key = (b"\xff", b"acct-\xfe", b"\xc0\xaf")[i % 3]
    pay = m.payment(debit=key.decode("utf-8", "replace"))
    return m.case(pay, Expect(DLQ, "PERMANENT", "misrouted"), key=key)


def wrong_partition(m: Maker, i: int) -> Case:
    pay = m.payment()
    right = partition_for(pay.key, m.partitions)
    wrong = (right + 1 + i % (m.partitions - 1)) % m.partitions
    return m.case(pay, Expect(DLQ, "PERMANENT", "belongs on"), partition=wrong)


def oversize(m: Maker, i: int) -> Case:
    """About 1 MB: just under the broker's max.message.bytes (1,048,588)."""
    size = 1_040_000
    if i == 0:
        return m.garbage(b"\xb5" + m.rng.randbytes(size), NOT_WIRE)
    if i == 1:
        # Its rejection would hold the id twice (id and detail): too large for any topic,
        # so the transaction fails until the record is alone and dead-lettered.
        return m.case(m.payment(payment_id="x" * size), Expect(DLQ, "TRANSACTION_FAILED"))
    return m.case(m.payment(reference="r" * size), Expect(POSTED))


# -- the catalogue ---------------------------------------------------------------------------

WIRE: list[tuple[str, int, Make]] = [
    ("not wire format: wrong magic byte (0xB5, 1, 0xFF, '{'...)", 500, wrong_magic),
    ("not wire format: shorter than 5 bytes", 250, short_value),
    ("not wire format: empty value", 150, lambda m, i: m.garbage(b"", NOT_WIRE)),
    ("null value", 150, lambda m, i: m.garbage(None, NOT_WIRE, key=None if i % 3 else b"k")),
    ("not wire format, spoofed eos.dlq.* headers", 100, spoofed_headers),
    ("unknown schema id (0, 999999999, 2^31-1, 2^31, 2^32-1)", 350, unknown_schema),
    ("schema id of another subject (look-alike)", 250, lookalike_subject),
    ("schema id of another ledger subject (entries)", 100, entry_subject),
    ("truncated Avro (incl. header only)", 450, truncated),
    ("random bytes after a valid header", 450, random_payload),
    ("valid Avro + trailing bytes", 350, trailing_bytes),
    ("Avro string that is not UTF-8", 150, bad_utf8),
    ("union branch out of range (2..1000)", 100, union_out_of_range),
    ("negative union branch (-1, -2)", 60, negative_union),
    ("string length negative or past the end", 100, bad_length),
    ("requested_at outside datetime's range", 100, timestamp_out_of_range),
    ("amount varint longer than 10 bytes", 60, overlong_varint),
    ("null key", 300, null_key),
    ("key is not the debit account (misrouted)", 400, misrouted),
    ("key that is not UTF-8 (debit spelt with U+FFFD)", 30, key_not_utf8),
    ("record on the wrong partition for its key", 400, wrong_partition),
    ("oversize ~1 MB, not the wire format", 1, lambda m, i: oversize(m, 0)),
    ("oversize ~1 MB payment id (its rejection cannot fit)", 1, lambda m, i: oversize(m, 1)),
    ("oversize ~1 MB reference, else valid", 1, lambda m, i: oversize(m, 2)),
]


def _currency(m: Maker, i: int) -> Case:
    code = ("XQZ", "eur", "", "EUR\n", " EUR", "EU", "EURO", "€", "E\x00R", "XXX", "\u0415UR")[
        i % 11
    ]
    return m.case(m.payment(currency=code), rejected("UNKNOWN_CURRENCY"))


def _too_large(m: Maker, i: int) -> Case:
    code = sorted(CURRENCIES)[i % len(CURRENCIES)]
    over = CURRENCIES[code].max_minor + (1 if i % 2 else m.rng.randint(2, 10**12))
    return m.case(m.payment(currency=code, amount=over), rejected("AMOUNT_TOO_LARGE"))


def _amount(amount: Callable[[Maker], int], reason: str) -> Make:
    return lambda m, i: m.case(m.payment(amount=amount(m)), rejected(reason))


def _pid(spell: Callable[[Maker, int], str]) -> Make:
    return lambda m, i: m.case(m.payment(payment_id=spell(m, i)), rejected("INVALID_ID"))


def _account(bad: Callable[[str, int], str]) -> Make:
    """An account spelt wrong: the debit (so the key too) or the credit, in turn."""

    def make(m: Maker, i: int) -> Case:
        pay = m.payment()
        if i % 2:
            pay = replace(pay, debit=bad(str(pay.debit), i // 2))
        else:
            pay = replace(pay, credit=bad(str(pay.credit), i // 2))
        return m.case(pay, rejected("INVALID_ACCOUNT"))

    return make


def _reply_refused(m: Maker, i: int) -> Case:
    topic = m.bad_replies[i % len(m.bad_replies)]
    headers = [("reply-to", topic.encode()), ("correlation-id", b"c-%d" % i)]
    return m.case(m.payment(), rejected("INVALID_REPLY_TO"), headers=headers)


def _unfunded(m: Maker, i: int) -> Case:
    pay = m.payment(debit=f"broke-{i % 50:02d}", currency="EUR")
    return m.case(pay, rejected("INSUFFICIENT_FUNDS"))


CONTROL = ("\x00", "\x07", "\x1b[31m", "\r", "\t", "\x7f", "\u2028", "\u200b", "\x85")
UNICODE = ("\uff11", "\u0430", "\u0661", "\U0001f600", "e\u0301", "\u202e", "\u00e9", "\ufffd")


def _insert(s: str, extra: str, i: int) -> str:
    """`extra` at the start, in the middle or at the end of `s`, in turn."""
    at = (0, len(s) // 2, len(s))[i % 3]
    return s[:at] + extra + s[at:]


def _spelling(m: Maker, i: int) -> str:
    """What uuid.UUID() would accept, or nearly a UUID: none is the hyphenated form."""
    u = m.uid()
    return (f"{{{u}}}", f"urn:uuid:{u}", u.replace("-", ""), f" {u}", f"{u} ", u + "0", u[:-1])[
        i % 7
    ]


RULES: list[tuple[str, int, Make]] = [
    ("amount 0", 150, _amount(lambda m: 0, "INVALID_AMOUNT")),
    ("amount negative", 250, _amount(lambda m: -m.rng.randint(1, 10**15), "INVALID_AMOUNT")),
    ("amount -2^63", 100, _amount(lambda m: -(2**63), "INVALID_AMOUNT")),
    ("amount > the currency's max", 350, _too_large),
    ("amount 2^63-1", 100, _amount(lambda m: 2**63 - 1, "AMOUNT_TOO_LARGE")),
    ("unknown currency ('XQZ', 'eur', '', 'EUR\\n'...)", 500, _currency),
    ("payment id: empty", 1, _pid(lambda m, i: "")),
    (
        "payment id: huge (1 kB to 100 kB)",
        120,
        _pid(lambda m, i: f"{i:04d}" + "x" * (100_000 if i % 40 == 0 else 10 ** (3 + i % 2))),
    ),
    ("payment id: control characters", 400, _pid(lambda m, i: _insert(m.uid(), CONTROL[i % 9], i))),
    ("payment id: Unicode", 400, _pid(lambda m, i: _insert(m.uid(), UNICODE[i % 8], i // 8))),
    ("payment id: UUID + trailing newline", 350, _pid(lambda m, i: m.uid() + "\n")),
    ("payment id: other UUID spellings ({}, urn:, no dashes, spaces)", 300, _pid(_spelling)),
    ("account: control characters", 400, _account(lambda a, i: _insert(a, CONTROL[i % 9], i))),
    ("account: Unicode", 400, _account(lambda a, i: _insert(a, UNICODE[i % 8], i // 8))),
    ("account: trailing newline", 350, _account(lambda a, i: a + "\n")),
    (
        "account: too long (65, 5000) / empty / bad first char",
        300,
        _account(lambda a, i: pick(i, "a" * 65, "b" * 5000, "", "-" + a, ":" + a, "a b")),
    ),
    ("same debit and credit account", 350, lambda m, i: _same(m)),
    ("reply-to refused (missing, ledger's own, DLQ, bad name)", 300, _reply_refused),
    ("debit account never funded", 200, _unfunded),
]


def _same(m: Maker) -> Case:
    pay = m.payment()
    return m.case(replace(pay, credit=pay.debit), rejected("SAME_ACCOUNT"))


def _boundary(m: Maker, i: int) -> Case:
    """Valid at the edge: each currency's largest amount from an external account, then
    the first and last instants a timestamp holds, a 64-character account, an id in upper
    case, a reference with control characters."""
    codes = sorted(CURRENCIES)
    code = codes[i % len(codes)]
    pay = m.payment(debit="ext:bank", currency=code, amount=CURRENCIES[code].max_minor)
    if i < len(codes):
        return m.case(pay, Expect(POSTED))
    pay = replace(pay, amount=1)
    variant = [
        replace(pay, at_ms=YEAR_1_MS),
        replace(pay, at_ms=YEAR_9999_END_MS),
        replace(pay, credit="p" * 63 + str(i % 10)),
        replace(pay, payment_id=str(pay.payment_id).upper()),
        replace(pay, reference="\x00 \u00e9 \U0001f600 \n"),
    ][i % 5]
    case = m.case(variant, Expect(POSTED))
    case.payment_id = str(pay.payment_id)  # outputs carry the id in lower case
    return case


VALID: list[tuple[str, int, Make]] = [
    ("valid payment", 2000, lambda m, i: m.case(m.payment(), Expect(POSTED))),
    ("valid at the edges (max amount, year 1/9999, 64 chars...)", 24 + 30, _boundary),
]
