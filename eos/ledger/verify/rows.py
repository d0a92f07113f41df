"""The decoded records the verifier checks, and the Snapshot that holds them all.

Each row starts with the record's partition and offset; the fields after them have the
names of the Avro fields they are read from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = [
    "DeadLetter",
    "Entry",
    "Leg",
    "Payment",
    "Position",
    "Rejection",
    "Remembered",
    "Reply",
    "Snapshot",
    "place",
]

Position = tuple[int, int]  # (partition, offset)


class Payment(NamedTuple):
    partition: int
    offset: int
    payment_id: str
    debit_account: str
    credit_account: str
    amount_minor: int
    currency: str
    reference: str | None = None
    reply_to: str | None = None  # the reply-to and correlation-id headers
    correlation_id: str | None = None

    def fields(self) -> tuple[str, str, int, str, str | None]:
        """What tells one payment from another under the same id (see ledger.dedup)."""
        return (
            self.debit_account,
            self.credit_account,
            self.amount_minor,
            self.currency,
            self.reference,
        )


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


class Reply(NamedTuple):
    partition: int
    offset: int
    topic: str
    payment_id: str
    correlation_id: str | None
    status: str
    reason: str | None
    debit_balance_after_minor: int | None
    replay: bool


# A debit's decision in the dedup store: (fingerprint, status, reason); None when the
# store kept only when the id was seen (credit legs, and debits before outcomes were kept).
Remembered = tuple[str, str | None, str | None] | None


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
    replies: list[Reply] = field(default_factory=list)
    reply_topics: set[str] = field(default_factory=set)  # read, so they exist
    # The dedup changelog, "D:<id>"/"C:<id>" -> what it holds; None when it was not read.
    dedup: dict[str, Remembered] | None = None
    dedup_purged: set[str] = field(default_factory=set)  # keys deleted (expired)
    undecodable_outputs: list[str] = field(default_factory=list)
    inputs: int = 0
    dlq_topic: str = "eos.dlq"
    notes: list[str] = field(default_factory=list)


def place(topic: str, partition: int, offset: int) -> str:
    """A record's address as the report names it: topic[partition]@offset."""
    return f"{topic}[{partition}]@{offset}"
