"""The snapshot grouped once, so that each check is a short pass over what it needs.

A dead letter is the outcome of one input record; posting or rejection is the outcome of
a payment id. A dead-lettered input leaves no trace in the ledger's state, so the next
input of its id (a replay from the DLQ, say) is decided afresh: a payment id's first
input is its first one that was not dead-lettered, and later ones are retries the ledger
answers from its dedup store. Every group keeps (partition, offset) order, and holds at
least one row: a payment id is a key of `debits` only if it has a debit entry.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

from eos.ledger.models import RejectionReason
from eos.ledger.settings import LedgerSettings
from eos.ledger.verify.rows import (
    DeadLetter,
    Entry,
    Leg,
    Payment,
    Position,
    Rejection,
    Snapshot,
)

__all__ = ["CONFLICT", "Index", "Posting", "build_index"]

# A refused reuse of an id: not the id's outcome.
CONFLICT = RejectionReason.IDEMPOTENCY_CONFLICT.value

_R = TypeVar("_R", Rejection, Leg)
_K = TypeVar("_K")
_V = TypeVar("_V")


class Posting(NamedTuple):
    """A payment with any posting output: its first debit entry, credit entry, credit leg."""

    payment_id: str
    payment: Payment
    debit: Entry | None
    credit: Entry | None
    leg: Leg | None


@dataclass
class Index:
    """What the checks look things up in, built once by `build_index`."""

    snap: Snapshot
    first: dict[str, Payment] = field(default_factory=dict)  # payment id -> first input
    only_dead: set[str] = field(default_factory=set)  # ids whose every input is dead-lettered
    duplicates: int = 0  # inputs after the first of their payment id (not dead-lettered)
    later: dict[str, list[Payment]] = field(default_factory=dict)  # those inputs, by id
    asking: list[Payment] = field(default_factory=list)  # inputs with a reply-to, in order
    debits: dict[str, list[Entry]] = field(default_factory=dict)
    credits: dict[str, list[Entry]] = field(default_factory=dict)
    entries_by_id: dict[str, list[Entry]] = field(default_factory=dict)
    rejections: dict[str, list[Rejection]] = field(default_factory=dict)  # but conflicts
    conflicts: dict[str, list[Rejection]] = field(default_factory=dict)  # IDEMPOTENCY_CONFLICT
    legs: dict[str, list[Leg]] = field(default_factory=dict)
    postings: list[Posting] = field(default_factory=list)  # in `first` order
    # Dead letters of inputs: each is the outcome of a payment id or of an undecodable input.
    dead_payments: int = 0
    dead: dict[str, list[DeadLetter]] = field(default_factory=dict)
    dead_inputs: dict[Position, list[DeadLetter]] = field(default_factory=dict)
    dead_undecodable: dict[Position, list[DeadLetter]] = field(default_factory=dict)
    unmatched_dead: list[DeadLetter] = field(default_factory=list)
    # Dead letters of credit legs: they explain a debit without a credit.
    dead_legs: dict[str, list[DeadLetter]] = field(default_factory=dict)
    # (account, currency) -> (account_seq, balance_after) of its last entry.
    chain_ends: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)


def build_index(snap: Snapshot, ledger: LedgerSettings) -> Index:
    """Groups `snap` by payment id (entries also by entry id) and matches its dead letters."""
    ix = Index(snap)
    at = {(pay.partition, pay.offset): pay.payment_id for pay in snap.payments}
    _match_dead_letters(ix, ledger, at)
    _first_inputs(ix, snap.payments)
    _group_entries(ix, snap.entries)
    ix.rejections = _by_payment(r for r in snap.rejections if r.reason != CONFLICT)
    ix.conflicts = _by_payment(r for r in snap.rejections if r.reason == CONFLICT)
    ix.legs = _by_payment(snap.legs)
    ix.postings = _postings(ix)
    ix.chain_ends = {
        (e.account, e.currency): (e.account_seq, e.balance_after_minor) for e in snap.entries
    }
    return ix


def _first_inputs(ix: Index, payments: list[Payment]) -> None:
    """Fills `first`, `only_dead`, `duplicates`, `later` and `asking`."""
    dead_first: dict[str, Payment] = {}
    later: defaultdict[str, list[Payment]] = defaultdict(list)
    for pay in payments:
        pid = pay.payment_id
        if (pay.partition, pay.offset) in ix.dead_inputs:
            dead_first.setdefault(pid, pay)
            continue
        if pay.reply_to is not None:
            ix.asking.append(pay)
        if pid in ix.first:
            ix.duplicates += 1
            later[pid].append(pay)
        else:
            ix.first[pid] = pay
    for pid, pay in dead_first.items():
        if pid not in ix.first:
            ix.first[pid] = pay
            ix.only_dead.add(pid)
    ix.later = _no_default(later)


def _group_entries(ix: Index, entries: list[Entry]) -> None:
    debits: defaultdict[str, list[Entry]] = defaultdict(list)
    credits: defaultdict[str, list[Entry]] = defaultdict(list)
    by_id: defaultdict[str, list[Entry]] = defaultdict(list)
    for e in entries:
        by_id[e.entry_id].append(e)
        (debits if e.side == "DEBIT" else credits)[e.payment_id].append(e)
    ix.debits = _no_default(debits)
    ix.credits = _no_default(credits)
    ix.entries_by_id = _no_default(by_id)


def _by_payment(rows: Iterable[_R]) -> dict[str, list[_R]]:
    groups: defaultdict[str, list[_R]] = defaultdict(list)
    for row in rows:
        groups[row.payment_id].append(row)
    return _no_default(groups)


def _no_default(groups: defaultdict[_K, list[_V]]) -> dict[_K, list[_V]]:
    """`groups` as a plain mapping: looking up a missing key no longer adds an empty group.
    (Not dict(groups): a copy of millions of keys would only add to the peak memory.)"""
    groups.default_factory = None
    return groups


def _postings(ix: Index) -> list[Posting]:
    postings = []
    for pid, pay in ix.first.items():
        debits, credits, legs = ix.debits.get(pid), ix.credits.get(pid), ix.legs.get(pid)
        if debits or credits or legs:
            postings.append(
                Posting(
                    pid,
                    pay,
                    debits[0] if debits else None,
                    credits[0] if credits else None,
                    legs[0] if legs else None,
                )
            )
    return postings


def _match_dead_letters(ix: Index, s: LedgerSettings, at: dict[Position, str]) -> None:
    """A payments dead letter matches by its source position (an undecodable input or a
    payment id's record), else by the payment id in its value; a credit-leg one by the
    leg at its source position, else by its payment id."""
    dead: defaultdict[str, list[DeadLetter]] = defaultdict(list)
    dead_inputs: defaultdict[Position, list[DeadLetter]] = defaultdict(list)
    dead_undecodable: defaultdict[Position, list[DeadLetter]] = defaultdict(list)
    dead_legs: defaultdict[str, list[DeadLetter]] = defaultdict(list)
    leg_at = {(leg.partition, leg.offset): leg.payment_id for leg in ix.snap.legs}
    undecodable = ix.snap.undecodable_payments
    ids = set(at.values())
    for d in ix.snap.dead_letters:
        if d.source_topic == s.payments_topic:
            ix.dead_payments += 1
            if d.source is not None and d.source in undecodable:
                dead_undecodable[d.source].append(d)
            elif d.source is not None and d.source in at:
                dead[at[d.source]].append(d)
                dead_inputs[d.source].append(d)
            elif d.payment_id is not None and d.payment_id in ids:
                dead[d.payment_id].append(d)
            else:
                ix.unmatched_dead.append(d)
        elif d.source_topic == s.credits_topic:
            pid = leg_at.get(d.source) if d.source is not None else None
            pid = pid or d.payment_id
            if pid is not None:
                dead_legs[pid].append(d)
    ix.dead, ix.dead_undecodable = _no_default(dead), _no_default(dead_undecodable)
    ix.dead_inputs = _no_default(dead_inputs)
    ix.dead_legs = _no_default(dead_legs)
