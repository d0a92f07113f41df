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


def place(topic: str, partition: int, offset: int) -> str:
    """A record's address as the report names it: topic[partition]@offset."""
    return f"{topic}[{partition}]@{offset}"
