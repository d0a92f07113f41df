"""The verifier's checks, one at a time, on hand-made snapshots: no broker needed.

Each corrupt snapshot breaks exactly one invariant of the clean one; its check names it,
and `analyze` finds that one violation and nothing else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from eos.ledger.dedup import request_fingerprint
from eos.ledger.settings import LedgerSettings
from eos.ledger.verify import (
    AMOUNT_MISMATCH,
    BALANCE_CHAIN,
    CHANGELOG_MISMATCH,
    CONFLICT_MISMATCH,
    CREDIT_WITHOUT_LEG,
    DEBIT_ORDER,
    DEDUP_MISMATCH,
    DUPLICATE_ENTRY,
    DUPLICATE_LEG,
    DUPLICATE_REJECTION,
    ENTRY_MISMATCH,
    MISSING_OUTCOME,
    MULTIPLE_OUTCOMES,
    POSTED_AGAINST_RULES,
    REPLY_COUNT,
    REPLY_MISMATCH,
    SEQ_GAP,
    UNBALANCED_CURRENCY,
    UNDECODABLE_OUTPUT,
    UNJUSTIFIED_REJECTION,
    UNKNOWN_PAYMENT,
    UNMATCHED_DEAD_LETTER,
    DeadLetter,
    Entry,
    Leg,
    Payment,
    Rejection,
    Reply,
    Report,
    Snapshot,
    analyze,
)
from eos.ledger.verify import checks as checks_module
from eos.ledger.verify.checks import CHECKS, Check
from eos.ledger.verify.checks_answers import check_conflicts, check_dedup_store, check_replies
from eos.ledger.verify.checks_books import (
    _balances_around,
    check_chains,
    check_changelog,
    check_currencies_balance,
    check_debit_order,
    check_duplicate_entries,
    check_duplicate_legs,
    check_duplicate_rejections,
    check_insufficient_funds,
    check_undecodable_outputs,
)
from eos.ledger.verify.checks_outcomes import (
    check_amounts,
    check_entries_match_payments,
    check_outcomes,
    check_posted_within_rules,
    check_postings_complete,
    check_undecodable_inputs,
    check_unknown_payments,
    check_unmatched_dead_letters,
)
from eos.ledger.verify.index import build_index
from eos.ledger.verify.rows import Remembered

REPLIES = "replies.c"
PAYMENTS = LedgerSettings().payments_topic


@pytest.fixture
def ledger() -> LedgerSettings:
    return LedgerSettings()


def remembered(snap: Snapshot, outcomes: dict[str, tuple[str | None, str | None]]) -> Snapshot:
    """`snap` with the dedup store the ledger would have kept: each decided id's first
    live input's fingerprint and outcome, each credited id."""
    first: dict[str, Payment] = {}
    dead = {d.source for d in snap.dead_letters}
    for pay in snap.payments:
        if (pay.partition, pay.offset) not in dead:
            first.setdefault(pay.payment_id, pay)
    store: dict[str, Remembered] = {
        f"D:{pid}": (request_fingerprint(*first[pid].fields()), *outcome)
        for pid, outcome in outcomes.items()
    }
    store.update({f"C:{e.payment_id}": None for e in snap.entries if e.side == "CREDIT"})
    return dataclasses.replace(snap, dedup=store)


def clean(ledger: LedgerSettings) -> Snapshot:
    """p1 posted (ext:bank -> alice), asked again (a replay) and reused with another amount
    (a conflict), each answered on replies.c; p2 rejected; p3 dead-lettered (misrouted),
    replayed from the DLQ and then rejected; one undecodable input dead-lettered."""
    pays = ledger.payments_topic
    p1 = Payment(0, 0, "p1", "ext:bank", "alice", 500, "USD", None, REPLIES, "c1")
    return remembered(
        Snapshot(
            payments=[
                p1,
                Payment(0, 1, "p2", "alice", "bob", 10_000, "USD"),
                Payment(0, 3, "p3", "bob", "alice", 5, "USD"),
                Payment(0, 4, "p3", "bob", "alice", 5, "USD"),  # the replay
                p1._replace(partition=1, offset=0, correlation_id="c2"),  # a retry
                p1._replace(partition=1, offset=1, amount_minor=501, correlation_id="c3"),
            ],
            undecodable_payments={(0, 2): "NOT_WIRE_FORMAT: value shorter than the header"},
            entries=[
                Entry(0, 0, "p1:D", "p1", "ext:bank", "alice", "DEBIT", "USD", -500, -500, 1),
                Entry(1, 0, "p1:C", "p1", "alice", "ext:bank", "CREDIT", "USD", 500, 500, 1),
            ],
            rejections=[
                Rejection(0, 0, "p2", "INSUFFICIENT_FUNDS"),
                Rejection(0, 1, "p3", "INSUFFICIENT_FUNDS"),
                Rejection(1, 0, "p1", "IDEMPOTENCY_CONFLICT"),
            ],
            legs=[Leg(0, 0, "p1", "ext:bank", "alice", 500, "USD")],
            dead_letters=[
                DeadLetter(0, 0, pays, (0, 2), None, "NOT_WIRE_FORMAT"),
                DeadLetter(0, 1, pays, (0, 3), "p3", "PERMANENT"),
            ],
            balances={"ext:bank|USD": (-500, 1), "alice|USD": (500, 1)},
            replies=[
                Reply(0, 0, REPLIES, "p1", "c1", "POSTED", None, -500, False),
                Reply(0, 1, REPLIES, "p1", "c2", "POSTED", None, -500, True),
                Reply(0, 2, REPLIES, "p1", "c3", "REJECTED", "IDEMPOTENCY_CONFLICT", None, False),
            ],
            reply_topics={REPLIES},
            inputs=7,
        ),
        {
            "p1": ("POSTED", None),
            "p2": ("REJECTED", "INSUFFICIENT_FUNDS"),
            "p3": ("REJECTED", "INSUFFICIENT_FUNDS"),
        },
    )


def found(check: Check, snap: Snapshot, ledger: LedgerSettings) -> dict[str, list[str]]:
    """The violations `check` alone adds for `snap`, by kind."""
    report = Report()
    check(build_index(snap, ledger), ledger, report)
    return {kind: messages for kind, messages in report.named.items() if messages}


def test_clean_books_pass(ledger: LedgerSettings) -> None:
    report = analyze(clean(ledger), ledger)

    assert report.ok, report.render()
    assert report.summary["distinct payment ids"] == 3
    assert report.summary["duplicates dropped"] == 2
    assert report.summary["idempotency conflicts"] == 1
    assert (report.posted, report.rejected, report.dead_lettered) == (1, 2, 2)
    assert report.rejected_by_reason == {"INSUFFICIENT_FUNDS": 2}


def test_a_payment_without_outcome_is_missing(ledger: LedgerSettings) -> None:
    books = clean(ledger)
    snap = dataclasses.replace(books, rejections=books.rejections[1:])

    assert found(check_outcomes, snap, ledger) == {
        MISSING_OUTCOME: [
            f"payment p2 ({ledger.payments_topic}[0]@1): no entry, rejection or dead letter"
        ]
    }
    assert analyze(snap, ledger).counts == {MISSING_OUTCOME: 1}


def test_a_credit_entry_without_its_leg_is_incomplete(ledger: LedgerSettings) -> None:
    snap = dataclasses.replace(clean(ledger), legs=[])

    assert found(check_postings_complete, snap, ledger) == {
        CREDIT_WITHOUT_LEG: ["payment p1: credit entry p1:C but no credit leg"]
    }
    assert analyze(snap, ledger).counts == {CREDIT_WITHOUT_LEG: 1}


def test_a_wrong_balance_after_breaks_the_chain(ledger: LedgerSettings) -> None:
    books = clean(ledger)
    debit, credit = books.entries
    # The changelog agrees with the wrong entry: only the chain itself is broken.
    snap = dataclasses.replace(
        books,
        entries=[debit, credit._replace(balance_after_minor=400)],
        balances={**books.balances, "alice|USD": (400, 1)},
    )

    assert found(check_chains, snap, ledger) == {
        BALANCE_CHAIN: [
            f"account alice USD: entry p1:C ({ledger.entries_topic}[1]@0) has balance_after "
            "400, expected 0 + 500 = 500"
        ]
    }
    assert analyze(snap, ledger).counts == {BALANCE_CHAIN: 1}


def test_a_changelog_balance_off_its_entries_differs(ledger: LedgerSettings) -> None:
    books = clean(ledger)
    snap = dataclasses.replace(books, balances={**books.balances, "alice|USD": (600, 1)})

    assert found(check_changelog, snap, ledger) == {
        CHANGELOG_MISMATCH: [
            "account alice USD: entries end at balance 500 (account_seq 1), "
            f"{ledger.balances_changelog} has b=600 n=1"
        ]
    }
    assert analyze(snap, ledger).counts == {CHANGELOG_MISMATCH: 1}


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"credit_account": "alice\n"}, "credit account 'alice\\n' is malformed"),
        ({"currency": "XQZ"}, "currency 'XQZ' is not accepted"),
        ({"amount_minor": 100_000_001}, "amount 100000001 is outside 1..100000000"),
    ],
)
def test_a_payment_posted_against_the_rules_is_named(
    ledger: LedgerSettings, change: dict[str, Any], why: str
) -> None:
    books = clean(ledger)
    snap = dataclasses.replace(
        books, payments=[books.payments[0]._replace(**change), *books.payments[1:]]
    )
    assert found(check_posted_within_rules, snap, ledger) == {
        POSTED_AGAINST_RULES: [f"payment p1: {why}"]
    }
    assert found(check_posted_within_rules, books, ledger) == {}
    assert analyze(snap, ledger).counts.get(POSTED_AGAINST_RULES) == 1  # it is in CHECKS


Corrupt = Callable[[Snapshot], Snapshot]


def _swap(items: list[Any], index: int, **change: Any) -> list[Any]:
    return [item._replace(**change) if i == index else item for i, item in enumerate(items)]


def _debits_out_of_order(s: Snapshot) -> Snapshot:
    """ext:bank pays p4 (input 0@5) and p5 (0@6), posted p5 first: the rest is consistent."""
    p4 = Payment(0, 5, "p4", "ext:bank", "alice", 1, "USD")
    p5 = Payment(0, 6, "p5", "ext:bank", "alice", 1, "USD")
    entries = [
        Entry(0, 1, "p5:D", "p5", "ext:bank", "alice", "DEBIT", "USD", -1, -501, 2),
        Entry(0, 2, "p4:D", "p4", "ext:bank", "alice", "DEBIT", "USD", -1, -502, 3),
        Entry(1, 1, "p5:C", "p5", "alice", "ext:bank", "CREDIT", "USD", 1, 501, 2),
        Entry(1, 2, "p4:C", "p4", "alice", "ext:bank", "CREDIT", "USD", 1, 502, 3),
    ]
    legs = [Leg(0, 1, p.payment_id, "ext:bank", "alice", 1, "USD") for p in (p5, p4)]
    assert s.dedup is not None
    snap = dataclasses.replace(
        s,
        payments=[*s.payments, p4, p5],
        entries=[*s.entries[:1], *entries[:2], s.entries[1], *entries[2:]],
        legs=[*s.legs, *legs],
        balances={"ext:bank|USD": (-502, 3), "alice|USD": (502, 3)},
    )
    decided = {k[2:]: (v[1], v[2]) for k, v in s.dedup.items() if k[0] == "D" and v}
    return remembered(snap, {**decided, "p4": ("POSTED", None), "p5": ("POSTED", None)})


# Each corruption breaks the invariant of one check; `alone` when no other check can see it.
CASES: list[tuple[Check, str, Corrupt, bool]] = [
    (
        check_outcomes,
        MULTIPLE_OUTCOMES,
        lambda s: dataclasses.replace(s, rejections=[*s.rejections, Rejection(0, 9, "p1", "X")]),
        True,
    ),
    (
        check_undecodable_inputs,
        MISSING_OUTCOME,
        lambda s: dataclasses.replace(s, dead_letters=s.dead_letters[1:]),
        True,
    ),
    (
        check_conflicts,
        CONFLICT_MISMATCH,
        lambda s: dataclasses.replace(s, rejections=s.rejections[:2]),
        True,
    ),
    (
        check_replies,
        REPLY_COUNT,
        lambda s: dataclasses.replace(s, replies=[s.replies[0], s.replies[2]]),
        True,
    ),
    (
        check_replies,
        REPLY_MISMATCH,
        lambda s: dataclasses.replace(s, replies=_swap(s.replies, 1, replay=False)),
        True,
    ),
    (
        check_dedup_store,
        DEDUP_MISMATCH,
        lambda s: dataclasses.replace(s, dedup={**(s.dedup or {}), "D:p2": ("f", "POSTED", None)}),
        True,
    ),
    (check_postings_complete, CREDIT_WITHOUT_LEG, lambda s: dataclasses.replace(s, legs=[]), True),
    (
        check_unknown_payments,
        UNKNOWN_PAYMENT,
        lambda s: dataclasses.replace(s, rejections=[*s.rejections, Rejection(0, 9, "p9", "X")]),
        True,
    ),
    (
        check_unmatched_dead_letters,
        UNMATCHED_DEAD_LETTER,
        lambda s: dataclasses.replace(
            s,
            dead_letters=[*s.dead_letters, DeadLetter(0, 9, PAYMENTS, (5, 5), None, "X")],
        ),
        True,
    ),
    (
        check_duplicate_entries,
        DUPLICATE_ENTRY,
        lambda s: dataclasses.replace(s, entries=[*s.entries, s.entries[0]._replace(offset=9)]),
        False,
    ),
    (
        check_duplicate_rejections,
        DUPLICATE_REJECTION,
        lambda s: dataclasses.replace(s, rejections=[*s.rejections, s.rejections[0]]),
        True,
    ),
    (
        check_duplicate_legs,
        DUPLICATE_LEG,
        lambda s: dataclasses.replace(s, legs=[*s.legs, s.legs[0]._replace(offset=9)]),
        True,
    ),
    (
        check_currencies_balance,
        UNBALANCED_CURRENCY,
        lambda s: dataclasses.replace(
            s, entries=_swap(s.entries, 1, delta_minor=400, balance_after_minor=400)
        ),
        False,
    ),
    (
        check_amounts,
        AMOUNT_MISMATCH,
        lambda s: dataclasses.replace(
            s, entries=_swap(s.entries, 1, delta_minor=400, balance_after_minor=400)
        ),
        False,
    ),
    (
        check_entries_match_payments,
        ENTRY_MISMATCH,
        lambda s: dataclasses.replace(s, entries=_swap(s.entries, 0, counterparty="carol")),
        True,
    ),
    (
        check_chains,
        SEQ_GAP,
        lambda s: dataclasses.replace(s, entries=_swap(s.entries, 1, account_seq=2)),
        False,
    ),
    (
        check_changelog,
        CHANGELOG_MISMATCH,
        lambda s: dataclasses.replace(s, balances={"ext:bank|USD": (-500, 1)}),
        True,
    ),
    (
        check_insufficient_funds,
        UNJUSTIFIED_REJECTION,
        lambda s: remembered(
            dataclasses.replace(s, payments=_swap(s.payments, 1, debit_account="ext:other")),
            {
                "p1": ("POSTED", None),
                "p2": ("REJECTED", "INSUFFICIENT_FUNDS"),
                "p3": ("REJECTED", "INSUFFICIENT_FUNDS"),
            },
        ),
        True,
    ),
    (check_debit_order, DEBIT_ORDER, _debits_out_of_order, True),
    (
        check_undecodable_outputs,
        UNDECODABLE_OUTPUT,
        lambda s: dataclasses.replace(s, undecodable_outputs=["replies.c[0]@3: MALFORMED_AVRO"]),
        True,
    ),
]


@pytest.mark.parametrize(
    ("check", "kind", "corrupt", "alone"),
    CASES,
    ids=[f"{case[0].__name__}-{case[1]}" for case in CASES],
)
def test_each_check_names_what_breaks_its_invariant(
    ledger: LedgerSettings, check: Check, kind: str, corrupt: Corrupt, alone: bool
) -> None:
    books = clean(ledger)
    snap = corrupt(books)
    assert kind in found(check, snap, ledger)
    assert found(check, books, ledger) == {}
    counts = analyze(snap, ledger).counts
    if alone:
        assert counts == {kind: 1}
    else:
        assert counts[kind] >= 1
    # Without the check, the violation goes unseen (unless another check names it too).
    without = tuple(c for c in CHECKS if c is not check)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(checks_module, "CHECKS", without)
        assert kind not in analyze(snap, ledger).counts


def test_every_check_has_a_case() -> None:
    assert {case[0] for case in CASES} | {check_posted_within_rules} >= set(CHECKS)


def test_balances_around_a_rejection_span_its_neighbouring_debits() -> None:
    chain = [((0, 0), 700), (None, 900), ((0, 5), 100), (None, 300)]
    assert _balances_around(chain, (0, 3)) == [700, 900]
    assert _balances_around(chain, (0, 9)) == [100, 300]
    assert _balances_around([(None, 50)], (0, 1)) == [0, 50]
