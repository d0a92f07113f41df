"""The verifier's checks, one at a time, on hand-made snapshots: no broker needed.

Each corrupt snapshot breaks exactly one invariant of the clean one; its check names it,
and `analyze` finds that one violation and nothing else.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from eos.ledger.settings import LedgerSettings
from eos.ledger.verify import (
    BALANCE_CHAIN,
    CHANGELOG_MISMATCH,
    CREDIT_WITHOUT_LEG,
    MISSING_OUTCOME,
    POSTED_AGAINST_RULES,
    DeadLetter,
    Entry,
    Leg,
    Payment,
    Rejection,
    Report,
    Snapshot,
    analyze,
)
from eos.ledger.verify.checks import Check
from eos.ledger.verify.checks_books import check_chains, check_changelog
from eos.ledger.verify.checks_outcomes import (
    check_outcomes,
    check_posted_within_rules,
    check_postings_complete,
)
from eos.ledger.verify.index import build_index


@pytest.fixture
def ledger() -> LedgerSettings:
    return LedgerSettings()


def clean(ledger: LedgerSettings) -> Snapshot:
    """p1 posted (ext:bank -> alice), p2 rejected, one undecodable input dead-lettered."""
    return Snapshot(
        payments=[
            Payment(0, 0, "p1", "ext:bank", "alice", 500, "USD"),
            Payment(0, 1, "p2", "alice", "bob", 10_000, "USD"),
            Payment(1, 0, "p1", "ext:bank", "alice", 500, "USD"),  # a duplicate input
        ],
        undecodable_payments={(0, 2): "NOT_WIRE_FORMAT: value shorter than the header"},
        entries=[
            Entry(0, 0, "p1:D", "p1", "ext:bank", "alice", "DEBIT", "USD", -500, -500, 1),
            Entry(1, 0, "p1:C", "p1", "alice", "ext:bank", "CREDIT", "USD", 500, 500, 1),
        ],
        rejections=[Rejection(0, 0, "p2", "INSUFFICIENT_FUNDS")],
        legs=[Leg(0, 0, "p1", "ext:bank", "alice", 500, "USD")],
        dead_letters=[DeadLetter(0, 0, ledger.payments_topic, (0, 2), None, "NOT_WIRE_FORMAT")],
        balances={"ext:bank|USD": (-500, 1), "alice|USD": (500, 1)},
        inputs=4,
    )


def found(check: Check, snap: Snapshot, ledger: LedgerSettings) -> dict[str, list[str]]:
    """The violations `check` alone adds for `snap`, by kind."""
    report = Report()
    check(build_index(snap, ledger), ledger, report)
    return {kind: messages for kind, messages in report.named.items() if messages}


def test_clean_books_pass(ledger: LedgerSettings) -> None:
    report = analyze(clean(ledger), ledger)

    assert report.ok, report.render()
    assert report.summary["distinct payment ids"] == 2
    assert report.summary["duplicates dropped"] == 1
    assert (report.posted, report.rejected, report.dead_lettered) == (1, 1, 1)
    assert report.rejected_by_reason == {"INSUFFICIENT_FUNDS": 1}


def test_a_payment_without_outcome_is_missing(ledger: LedgerSettings) -> None:
    snap = dataclasses.replace(clean(ledger), rejections=[])

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
