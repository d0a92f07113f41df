"""`eos verify ledger`: read every committed record of the ledger's topics and check its
invariants.

For each distinct payment id there is exactly one outcome (posted: debit entry, credit leg
and credit entry; or one rejection; or one dead letter), no entry or rejection appears
twice, every currency balances, each account's entries chain (account_seq 1, 2, 3...,
balance_after = previous + delta) up to its balance in the changelog, internal accounts
never go negative, and each account's debits were posted in input order.

Every topic is read with read_committed up to its end (partition EOF), so run it once the
processor has caught up: a payment still in flight shows up as a violation.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import struct
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import fastavro
from confluent_kafka import (
    KafkaException,
    Message,
)
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from eos.engine import dlq as h
from eos.kafka.reader import Handler, read_topics
from eos.ledger.settings import LedgerSettings

HEADER = struct.Struct(">bI")
EXAMPLES = 10

# Violation kinds, in the order the report lists them.
MISSING_OUTCOME = "missing outcome"
MULTIPLE_OUTCOMES = "multiple outcomes"
DEBIT_WITHOUT_CREDIT = "debit without credit"
LEG_WITHOUT_CREDIT_ENTRY = "credit leg without credit entry"
CREDIT_WITHOUT_LEG = "credit entry without credit leg"
CREDIT_WITHOUT_DEBIT = "credit without debit"
UNKNOWN_PAYMENT = "output for unknown payment"
UNMATCHED_DEAD_LETTER = "unmatched dead letter"
DUPLICATE_ENTRY = "duplicate entry"
DUPLICATE_REJECTION = "duplicate rejection"
DUPLICATE_LEG = "duplicate credit leg"
UNBALANCED_CURRENCY = "currency does not balance"
AMOUNT_MISMATCH = "debit and credit amounts differ"
ENTRY_MISMATCH = "entry does not match its payment"
SEQ_GAP = "account_seq gap"
BALANCE_CHAIN = "balance chain broken"
CHANGELOG_MISMATCH = "balance differs from changelog"
NEGATIVE_BALANCE = "negative balance"
DEBIT_ORDER = "debits out of input order"
UNDECODABLE_OUTPUT = "undecodable output"

KINDS = (
    MISSING_OUTCOME,
    MULTIPLE_OUTCOMES,
    DEBIT_WITHOUT_CREDIT,
    LEG_WITHOUT_CREDIT_ENTRY,
    CREDIT_WITHOUT_LEG,
    CREDIT_WITHOUT_DEBIT,
    UNKNOWN_PAYMENT,
    UNMATCHED_DEAD_LETTER,
    DUPLICATE_ENTRY,
    DUPLICATE_REJECTION,
    DUPLICATE_LEG,
    UNBALANCED_CURRENCY,
    AMOUNT_MISMATCH,
    ENTRY_MISMATCH,
    SEQ_GAP,
    BALANCE_CHAIN,
    CHANGELOG_MISMATCH,
    NEGATIVE_BALANCE,
    DEBIT_ORDER,
    UNDECODABLE_OUTPUT,
)

Position = tuple[int, int]  # (partition, offset)
_T = TypeVar("_T")


# -- the decoded records ---------------------------------------------------------------------


class Payment(NamedTuple):
    partition: int
    offset: int
    payment_id: str
    debit_account: str
    credit_account: str
    amount_minor: int
    currency: str


class Entry(NamedTuple):
    partition: int
    offset: int
    entry_id: str
    payment_id: str
    account: str
    counterparty: str
    side: str
    currency: str
    delta_minor: int
    balance_after_minor: int
    account_seq: int


class Rejection(NamedTuple):
    partition: int
    offset: int
    payment_id: str
    reason: str


class Leg(NamedTuple):
    partition: int
    offset: int
    payment_id: str
    debit_account: str
    credit_account: str
    amount_minor: int
    currency: str


_Row = TypeVar("_Row", Payment, Entry, Rejection, Leg)


class DeadLetter(NamedTuple):
    partition: int
    offset: int
    source_topic: str
    source: Position | None  # eos.dlq.partition / eos.dlq.offset, when present
    payment_id: str | None  # from decoding the original value, when it decodes
    reason: str


@dataclass
class Snapshot:
    """Everything `verify` read, decoded; each list in (partition, offset) order."""

    payments: list[Payment] = field(default_factory=list)
    undecodable_payments: dict[Position, str] = field(default_factory=dict)  # -> why
    entries: list[Entry] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    legs: list[Leg] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    balances: dict[str, tuple[int, int]] = field(default_factory=dict)  # key -> (b, n)
    undecodable_outputs: list[str] = field(default_factory=list)
    inputs: int = 0
    dlq_topic: str = "eos.dlq"
    notes: list[str] = field(default_factory=list)


# -- the report ------------------------------------------------------------------------------


class Violation(NamedTuple):
    kind: str
    message: str


@dataclass
class Report:
    """What `verify` found: summary counts and every violation, named.

    `render()` prints at most `examples` violations of each kind; all are counted.
    """

    examples: int = EXAMPLES
    summary: dict[str, int] = field(default_factory=dict)
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    named: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, kind: str, message: str) -> None:
        self.named[kind].append(message)

    @property
    def violations(self) -> list[Violation]:
        return [Violation(kind, m) for kind in self.kinds() for m in self.named[kind]]

    @property
    def violation_count(self) -> int:
        return sum(len(messages) for messages in self.named.values())

    @property
    def counts(self) -> Counter[str]:
        """Violations per kind."""
        return Counter({kind: len(self.named[kind]) for kind in self.kinds()})

    @property
    def ok(self) -> bool:
        return self.violation_count == 0

    @property
    def posted(self) -> int:
        return self.summary.get("posted", 0)

    @property
    def rejected(self) -> int:
        return self.summary.get("rejected", 0)

    @property
    def duplicates(self) -> int:
        return self.summary.get("duplicates dropped", 0)

    @property
    def dead_lettered(self) -> int:
        return self.summary.get("dead-lettered", 0)

    def kinds(self) -> list[str]:
        """Kinds with at least one violation, in report order."""
        present = [k for k, messages in self.named.items() if messages]
        return [k for k in KINDS if k in present] + sorted(set(present) - set(KINDS))

    def render(self) -> str:
        lines = ["ledger verification"]
        width = max((len(k) for k in (*self.summary, *self.rejected_by_reason)), default=0) + 4
        for name, value in self.summary.items():
            lines.append(f"  {name:<{width}} {value:>12,}")
            if name == "rejected":
                for reason, count in sorted(self.rejected_by_reason.items()):
                    lines.append(f"    {reason:<{width - 2}} {count:>12,}")
        lines.extend(f"  note: {note}" for note in self.notes)
        if self.seconds:
            lines.append(f"  read and checked in {self.seconds:.1f}s")
        if self.ok:
            lines.append("verification PASSED")
            return "\n".join(lines)
        lines.append(f"verification FAILED: {self.violation_count} violation(s)")
        for kind in self.kinds():
            messages = self.named[kind]
            lines.append(f"  {kind}: {len(messages)}")
            lines.extend(f"    - {message}" for message in messages[: self.examples])
            if len(messages) > self.examples:
                lines.append(f"    ... and {len(messages) - self.examples} more")
        return "\n".join(lines)


# -- the checks (pure: a snapshot in, a report out) ----------------------------------------


def _pos(topic: str, partition: int, offset: int) -> str:
    return f"{topic}[{partition}]@{offset}"


def analyze(snap: Snapshot, ledger: LedgerSettings, examples: int = EXAMPLES) -> Report:
    report = Report(examples=examples, notes=list(snap.notes))
    add = report.add
    s = ledger

    # Inputs: the first record of each payment id is the one that counts.
    first: dict[str, Payment] = {}
    at: dict[Position, str] = {}
    duplicates = 0
    for pay in snap.payments:
        at[(pay.partition, pay.offset)] = pay.payment_id
        if pay.payment_id in first:
            duplicates += 1
        else:
            first[pay.payment_id] = pay

    # Outputs, grouped by payment id.
    debits: dict[str, list[Entry]] = defaultdict(list)
    credits: dict[str, list[Entry]] = defaultdict(list)
    entry_seen: dict[str, list[Entry]] = defaultdict(list)
    for e in snap.entries:
        entry_seen[e.entry_id].append(e)
        (debits if e.side == "DEBIT" else credits)[e.payment_id].append(e)
    rejections: dict[str, list[Rejection]] = defaultdict(list)
    for r in snap.rejections:
        rejections[r.payment_id].append(r)
    legs: dict[str, list[Leg]] = defaultdict(list)
    leg_at: dict[Position, str] = {}
    for leg in snap.legs:
        legs[leg.payment_id].append(leg)
        leg_at[(leg.partition, leg.offset)] = leg.payment_id

    # Dead letters: payments ones are outcomes; credit-leg ones explain a missing credit.
    dead: dict[str, list[DeadLetter]] = defaultdict(list)
    dead_undecodable: dict[Position, list[DeadLetter]] = defaultdict(list)
    dead_legs: dict[str, list[DeadLetter]] = defaultdict(list)
    dead_payments = 0
    for d in snap.dead_letters:
        where = _pos(snap.dlq_topic, d.partition, d.offset)
        if d.source_topic == s.payments_topic:
            dead_payments += 1
            if d.source is not None and d.source in snap.undecodable_payments:
                dead_undecodable[d.source].append(d)
            elif d.source is not None and d.source in at:
                dead[at[d.source]].append(d)
            elif d.payment_id is not None and d.payment_id in first:
                dead[d.payment_id].append(d)
            else:
                src = "?" if d.source is None else _pos(s.payments_topic, *d.source)
                add(
                    UNMATCHED_DEAD_LETTER,
                    f"{where} ({d.reason}) names input {src}, which is not in "
                    f"{s.payments_topic}"
                    + (f" (payment id {d.payment_id})" if d.payment_id else ""),
                )
        elif d.source_topic == s.credits_topic:
            pid = leg_at.get(d.source) if d.source is not None else None
            pid = pid or d.payment_id
            if pid is not None:
                dead_legs[pid].append(d)

    # 1. exactly one outcome per payment id, and complete postings.
    posted = 0
    reasons: Counter[str] = Counter()
    for pid, pay in first.items():
        d_list, c_list, l_list = debits.get(pid), credits.get(pid), legs.get(pid)
        r_list, x_list = rejections.get(pid, []), dead.get(pid, [])
        kinds = []
        if d_list or c_list or l_list:
            kinds.append("posted")
            if d_list:
                posted += 1
        if r_list:
            kinds.append(f"rejected ({r_list[0].reason})")
            reasons[r_list[0].reason] += 1
        if x_list:
            kinds.append(f"dead-lettered ({x_list[0].reason})")
        if not kinds:
            where = _pos(s.payments_topic, pay.partition, pay.offset)
            add(MISSING_OUTCOME, f"payment {pid} ({where}): no entry, rejection or dead letter")
        elif len(kinds) > 1 or len(x_list) > 1:
            where = _pos(s.payments_topic, pay.partition, pay.offset)
            extra = f", dead-lettered {len(x_list)} times" if len(x_list) > 1 else ""
            add(MULTIPLE_OUTCOMES, f"payment {pid} ({where}): {' and '.join(kinds)}{extra}")
        if d_list or c_list or l_list:
            _check_posting(report, s, pid, pay, d_list, c_list, l_list, dead_legs.get(pid))

    for position, why in snap.undecodable_payments.items():
        where = _pos(s.payments_topic, *position)
        found = dead_undecodable.get(position, [])
        if not found:
            add(MISSING_OUTCOME, f"undecodable input {where} ({why}) is not in the DLQ")
        elif len(found) > 1:
            add(MULTIPLE_OUTCOMES, f"undecodable input {where} is in the DLQ {len(found)} times")

    for pid in sorted({*debits, *credits, *legs, *rejections} - set(first)):
        what = [
            name
            for name, group in (
                ("entries", debits.get(pid, []) + credits.get(pid, [])),
                ("credit legs", legs.get(pid, [])),
                ("rejections", rejections.get(pid, [])),
            )
            if group
        ]
        add(UNKNOWN_PAYMENT, f"payment {pid} has {', '.join(what)} but is not in the inputs")

    # 2. nothing twice.
    for entry_id, group in entry_seen.items():
        if len(group) > 1:
            places = ", ".join(_pos(s.entries_topic, e.partition, e.offset) for e in group)
            add(DUPLICATE_ENTRY, f"entry {entry_id} appears {len(group)} times ({places})")
    for pid, r_group in rejections.items():
        if len(r_group) > 1:
            places = ", ".join(_pos(s.rejected_topic, r.partition, r.offset) for r in r_group)
            add(DUPLICATE_REJECTION, f"payment {pid} rejected {len(r_group)} times ({places})")
    for pid, l_group in legs.items():
        if len(l_group) > 1:
            places = ", ".join(_pos(s.credits_topic, g.partition, g.offset) for g in l_group)
            add(DUPLICATE_LEG, f"payment {pid} has {len(l_group)} credit legs ({places})")

    # 3. debits equal credits per currency.
    totals: Counter[str] = Counter()
    for e in snap.entries:
        totals[e.currency] += e.delta_minor
    for currency, total in sorted(totals.items()):
        if total != 0:
            add(UNBALANCED_CURRENCY, f"{currency}: entries sum to {total}, not 0")

    # 4. and 5. per (account, currency) chains, and no internal account below zero.
    last: dict[tuple[str, str], tuple[int, int]] = {}
    external = s.external_prefix
    for e in snap.entries:
        key = (e.account, e.currency)
        seq, balance = last.get(key, (0, 0))
        last[key] = (e.account_seq, e.balance_after_minor)
        if (
            e.account_seq == seq + 1
            and e.balance_after_minor == balance + e.delta_minor
            and (e.balance_after_minor >= 0 or e.account.startswith(external))
        ):
            continue
        name = f"account {e.account} {e.currency}: entry {e.entry_id}"
        where = _pos(s.entries_topic, e.partition, e.offset)
        if e.account_seq != seq + 1:
            add(SEQ_GAP, f"{name} ({where}) has account_seq {e.account_seq}, expected {seq + 1}")
        if e.balance_after_minor != balance + e.delta_minor:
            add(
                BALANCE_CHAIN,
                f"{name} ({where}) has balance_after {e.balance_after_minor}, expected "
                f"{balance} + {e.delta_minor} = {balance + e.delta_minor}",
            )
        if e.balance_after_minor < 0 and not e.account.startswith(external):
            add(NEGATIVE_BALANCE, f"{name} ({where}) leaves {e.balance_after_minor}")
    for (account, currency), (seq, balance) in last.items():
        stored = snap.balances.get(f"{account}|{currency}")
        if stored is not None and stored != (balance, seq):
            add(
                CHANGELOG_MISMATCH,
                f"account {account} {currency}: entries end at balance {balance} "
                f"(account_seq {seq}), {s.balances_changelog} has b={stored[0]} n={stored[1]}",
            )
    for name, (b, n) in snap.balances.items():
        account, _, currency = name.rpartition("|")
        if (account, currency) not in last and (b, n) != (0, 0):
            add(
                CHANGELOG_MISMATCH,
                f"account {account} {currency}: {s.balances_changelog} has b={b} n={n} "
                "but there are no entries",
            )

    # 6. each account's debits in the order of their payments' first input record.
    order: dict[str, list[tuple[Position, str]]] = defaultdict(list)
    seen_debit: set[str] = set()
    for e in snap.entries:
        if e.side != "DEBIT" or e.entry_id in seen_debit:
            continue
        seen_debit.add(e.entry_id)
        pay_or_none = first.get(e.payment_id)
        if pay_or_none is not None:
            order[e.account].append(((pay_or_none.partition, pay_or_none.offset), e.payment_id))
    for account, seq_of in order.items():
        latest: tuple[Position, str] | None = None
        late = 0
        example = ""
        for item in seq_of:
            if latest is not None and item[0] < latest[0]:
                late += 1
                if not example:
                    example = (
                        f"{item[1]} ({_pos(s.payments_topic, *item[0])}) was posted after "
                        f"{latest[1]} ({_pos(s.payments_topic, *latest[0])})"
                    )
            elif latest is None or item[0] > latest[0]:
                latest = item
        if late:
            add(DEBIT_ORDER, f"account {account}: {late} debit(s) out of order; first: {example}")

    for message in snap.undecodable_outputs:
        add(UNDECODABLE_OUTPUT, message)

    distinct_rejections = sum(1 for pid in rejections if pid in first)
    report.rejected_by_reason = reasons
    report.summary = {
        "inputs": snap.inputs,
        "distinct payment ids": len(first),
        "duplicates dropped": duplicates,
        "undecodable inputs": len(snap.undecodable_payments),
        "posted": posted,
        "rejected": distinct_rejections,
        "dead-lettered": dead_payments,
        "credit legs": len(snap.legs),
        "entries": len(snap.entries),
        "accounts": len({e.account for e in snap.entries}),
        "currencies": len(totals),
        "changelog balances": len(snap.balances),
    }
    return report


def _check_posting(
    report: Report,
    s: LedgerSettings,
    pid: str,
    pay: Payment,
    d_list: list[Entry] | None,
    c_list: list[Entry] | None,
    l_list: list[Leg] | None,
    dead_legs: list[DeadLetter] | None,
) -> None:
    add = report.add
    debit = d_list[0] if d_list else None
    credit = c_list[0] if c_list else None
    leg = l_list[0] if l_list else None
    if debit is not None and credit is None:
        if leg is not None:
            where = _pos(s.credits_topic, leg.partition, leg.offset)
            add(
                LEG_WITHOUT_CREDIT_ENTRY,
                f"payment {pid}: credit leg {where} but no credit entry {pid}:C",
            )
        else:
            why = (
                f"credit leg dead-lettered ({dead_legs[0].reason})"
                if dead_legs
                else f"no credit leg in {s.credits_topic}"
            )
            add(DEBIT_WITHOUT_CREDIT, f"payment {pid}: debit entry {pid}:D but no credit ({why})")
    elif debit is None:
        what = f"credit entry {pid}:C" if credit is not None else "a credit leg"
        add(CREDIT_WITHOUT_DEBIT, f"payment {pid}: {what} but no debit entry {pid}:D")
    elif leg is None:
        add(CREDIT_WITHOUT_LEG, f"payment {pid}: credit entry {pid}:C but no credit leg")

    if debit is not None and credit is not None and debit.delta_minor != -credit.delta_minor:
        add(
            AMOUNT_MISMATCH,
            f"payment {pid}: debit {debit.delta_minor} {debit.currency}, "
            f"credit {credit.delta_minor} {credit.currency}",
        )
    problems = []
    if debit is not None:
        problems += _entry_problems(debit, pay, "DEBIT", "D")
    if credit is not None:
        problems += _entry_problems(credit, pay, "CREDIT", "C")
    if leg is not None and (
        leg.debit_account,
        leg.credit_account,
        leg.amount_minor,
        leg.currency,
    ) != (pay.debit_account, pay.credit_account, pay.amount_minor, pay.currency):
        problems.append("credit leg differs from the payment")
    if problems:
        add(ENTRY_MISMATCH, f"payment {pid}: {'; '.join(problems)}")


def _entry_problems(e: Entry, pay: Payment, side: str, suffix: str) -> list[str]:
    debit = side == "DEBIT"
    if debit:
        account, other = pay.debit_account, pay.credit_account
    else:
        account, other = pay.credit_account, pay.debit_account
    delta = -pay.amount_minor if debit else pay.amount_minor
    out = []
    if e.entry_id != f"{pay.payment_id}:{suffix}":
        out.append(f"entry id {e.entry_id} for side {side}")
    if e.account != account or e.counterparty != other:
        out.append(f"{e.entry_id} is {e.account}->{e.counterparty}, payment {account}->{other}")
    if e.delta_minor != delta or e.currency != pay.currency:
        out.append(
            f"{e.entry_id} delta {e.delta_minor} {e.currency}, payment {delta} {pay.currency}"
        )
    return out


# -- reading ---------------------------------------------------------------------------------


class Undecodable(Exception):
    """The value is not a record in the Confluent Avro wire format (reason, message)."""


class Decoder:
    """Avro values in the Confluent wire format, with the writer schema of their id."""

    def __init__(self, registry: SchemaRegistryClient) -> None:
        self._registry = registry
        self._schemas: dict[int, Any] = {}

    def decode(self, data: bytes | None) -> dict[str, Any]:
        if data is None or len(data) < HEADER.size:
            raise Undecodable("NOT_WIRE_FORMAT: value shorter than the 5-byte header")
        magic, schema_id = HEADER.unpack_from(data)
        if magic != 0:
            raise Undecodable(f"NOT_WIRE_FORMAT: magic byte {magic}")
        schema = self._schemas.get(schema_id)
        if schema is None:
            schema = self._schemas[schema_id] = self._fetch(schema_id)
        buf = io.BytesIO(data)
        buf.seek(HEADER.size)
        try:
            value = fastavro.schemaless_reader(buf, schema, None)
        except Exception as exc:  # fastavro raises EOFError, ValueError, IndexError, ...
            raise Undecodable(f"MALFORMED_AVRO: {type(exc).__name__}: {exc}") from exc
        if buf.tell() != len(data):
            raise Undecodable(f"MALFORMED_AVRO: {len(data) - buf.tell()} trailing bytes")
        if not isinstance(value, dict):
            raise Undecodable("NOT_A_RECORD: the schema is not a record")
        return value

    def _fetch(self, schema_id: int) -> Any:
        try:
            schema = self._registry.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                raise Undecodable(f"UNKNOWN_SCHEMA: schema id {schema_id}") from exc
            raise
        # Timestamps stay epoch millis: cheaper to read, and nothing here needs datetimes.
        return fastavro.parse_schema(_without_logical_types(json.loads(schema.schema_str or "")))


def _without_logical_types(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _without_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [_without_logical_types(v) for v in schema]
    return schema


class _Collector:
    """Decodes records as they arrive (while librdkafka fetches more) into a Snapshot."""

    def __init__(self, registry: SchemaRegistryClient, ledger: LedgerSettings, dlq: str):
        self.s = ledger
        self.dlq = dlq
        self.decode = Decoder(registry).decode
        # Per partition, so that each topic ends up in (partition, offset) order.
        self.payments: dict[int, list[Payment]] = defaultdict(list)
        self.entries: dict[int, list[Entry]] = defaultdict(list)
        self.rejections: dict[int, list[Rejection]] = defaultdict(list)
        self.legs: dict[int, list[Leg]] = defaultdict(list)
        self.snap = Snapshot(dlq_topic=dlq)

    def handlers(self) -> dict[str, Handler]:
        s = self.s
        return {
            s.payments_topic: self.payment,
            s.entries_topic: self.entry,
            s.rejected_topic: self.rejection,
            s.credits_topic: self.leg,
            self.dlq: self.dead_letter,
            s.balances_changelog: self.balance,
        }

    def payment(self, msg: Message) -> None:
        self.snap.inputs += 1
        try:
            pay = self._row(Payment, msg)
        except (Undecodable, KeyError) as exc:
            self.snap.undecodable_payments[(msg.partition() or 0, msg.offset() or 0)] = _why(exc)
            return
        self.payments[pay.partition].append(pay)

    def entry(self, msg: Message) -> None:
        self._collect(Entry, msg, self.s.entries_topic, self.entries)

    def rejection(self, msg: Message) -> None:
        self._collect(Rejection, msg, self.s.rejected_topic, self.rejections)

    def leg(self, msg: Message) -> None:
        self._collect(Leg, msg, self.s.credits_topic, self.legs)

    def _row(self, kind: type[_Row], msg: Message) -> _Row:
        """The record as `kind`: its partition and offset, then the value's fields of the
        same names."""
        v = self.decode(msg.value())
        return kind(msg.partition() or 0, msg.offset() or 0, *(v[f] for f in kind._fields[2:]))

    def _collect(
        self, kind: type[_Row], msg: Message, topic: str, into: dict[int, list[_Row]]
    ) -> None:
        try:
            row = self._row(kind, msg)
        except (Undecodable, KeyError) as exc:
            self._bad(topic, msg.partition() or 0, msg.offset() or 0, exc)
            return
        into[row.partition].append(row)

    def dead_letter(self, msg: Message) -> None:
        consumed: Any = msg.headers() or []  # a list of (str, bytes | None) when consumed
        headers = [(k, v) for k, v in consumed if isinstance(v, bytes)]
        source_topic = h.header(headers, h.H_TOPIC)
        if source_topic not in (self.s.payments_topic, self.s.credits_topic):
            return  # another application's dead letter
        source: Position | None = None
        with contextlib.suppress(ValueError):
            source = (
                int(h.header(headers, h.H_PARTITION) or ""),
                int(h.header(headers, h.H_OFFSET) or ""),
            )
        try:
            payment_id: str | None = self.decode(msg.value())["payment_id"]
        except (Undecodable, KeyError):
            payment_id = None
        reason = h.header(headers, h.H_ERROR_REASON) or "?"
        self.snap.dead_letters.append(
            DeadLetter(
                msg.partition() or 0, msg.offset() or 0, source_topic, source, payment_id, reason
            )
        )

    def balance(self, msg: Message) -> None:
        name = (msg.key() or b"").decode("utf-8", "replace")
        value = msg.value()
        if value is None:
            self.snap.balances.pop(name, None)
            return
        try:
            state = json.loads(value)
            self.snap.balances[name] = (int(state["b"]), int(state["n"]))
        except (ValueError, KeyError, TypeError) as exc:
            where = _pos(self.s.balances_changelog, msg.partition() or 0, msg.offset() or 0)
            self.snap.undecodable_outputs.append(
                f"{where} key {name}: not a JSON balance {{b, n}} ({type(exc).__name__}: {exc})"
            )

    def _bad(self, topic: str, p: int, o: int, exc: Exception) -> None:
        self.snap.undecodable_outputs.append(f"{_pos(topic, p, o)}: {_why(exc)}")

    def finish(self, missing: list[str]) -> Snapshot:
        snap = self.snap
        snap.notes = [f"topic {t} does not exist (read as empty)" for t in missing]
        snap.payments = _in_order(self.payments)
        snap.entries = _in_order(self.entries)
        snap.rejections = _in_order(self.rejections)
        snap.legs = _in_order(self.legs)
        return snap


def _in_order(parts: dict[int, list[_T]]) -> list[_T]:
    return [item for p in sorted(parts) for item in parts[p]]


def snapshot(
    config: Mapping[str, Any],
    registry: SchemaRegistryClient,
    ledger: LedgerSettings,
    dlq_topic: str,
    timeout: float = 120.0,
) -> Snapshot:
    """Read and decode every committed record of the ledger's topics."""
    collector = _Collector(registry, ledger, dlq_topic)
    missing = read_topics(config, collector.handlers(), timeout)
    return collector.finish(missing)


def _why(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"MISSING_FIELD: {exc}"
    return str(exc)


def verify(
    bootstrap_servers: str,
    schema_registry_url: str,
    ledger: LedgerSettings | None = None,
    dlq_topic: str = "eos.dlq",
    *,
    client_config: Mapping[str, Any] | None = None,
    registry: SchemaRegistryClient | None = None,
    timeout: float = 120.0,
    examples: int = EXAMPLES,
) -> Report:
    """Read the ledger's topics (read_committed, to their end) and check every invariant.

    `client_config` adds librdkafka settings (security) to the consumer's.
    """
    started = time.monotonic()
    ledger = ledger or LedgerSettings()
    config = {"bootstrap.servers": bootstrap_servers, **(client_config or {})}
    registry = registry or SchemaRegistryClient({"url": schema_registry_url})
    # Millions of small tuples and no cycles: the cyclic collector would only slow us down.
    collecting = gc.isenabled()
    gc.disable()
    try:
        snap = snapshot(config, registry, ledger, dlq_topic, timeout)
        report = analyze(snap, ledger, examples)
    finally:
        if collecting:
            gc.enable()
    report.seconds = time.monotonic() - started
    return report


def run_verify(
    bootstrap_servers: str, schema_registry_url: str, ledger: LedgerSettings, dlq_topic: str
) -> int:
    """`eos verify ledger`: print the report; 0 when it passes, 1 on any violation, 2 when
    the topics cannot be read to their end (an open transaction, an unreachable cluster)."""
    try:
        report = verify(bootstrap_servers, schema_registry_url, ledger, dlq_topic)
    except (TimeoutError, RuntimeError, KafkaException) as exc:
        print(f"verification could not complete: {exc}", file=sys.stderr)
        return 2
    print(report.render())
    return 0 if report.ok else 1
