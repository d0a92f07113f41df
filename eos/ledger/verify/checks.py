"""`analyze`: every check over one snapshot, in the report's order, and the summary.

Pure: a snapshot in, a report out. Each check is a function of (index, ledger settings,
report) that adds the violations of one kind or a tight group of kinds; see
checks_outcomes and checks_books.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from eos.ledger.settings import LedgerSettings
from eos.ledger.verify.checks_answers import check_conflicts, check_dedup_store, check_replies
from eos.ledger.verify.checks_books import (
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
from eos.ledger.verify.index import Index, build_index
from eos.ledger.verify.report import EXAMPLES, Report
from eos.ledger.verify.rows import Snapshot

__all__ = ["CHECKS", "Check", "analyze", "summarize"]

Check = Callable[[Index, LedgerSettings, Report], None]

# In the order of KINDS. Within a kind, messages keep the order they are added in, so
# check_outcomes must run before check_undecodable_inputs (both add missing outcomes).
CHECKS: tuple[Check, ...] = (
    check_outcomes,
    check_undecodable_inputs,
    check_conflicts,
    check_replies,
    check_dedup_store,
    check_postings_complete,
    check_unknown_payments,
    check_unmatched_dead_letters,
    check_duplicate_entries,
    check_duplicate_rejections,
    check_duplicate_legs,
    check_currencies_balance,
    check_amounts,
    check_posted_within_rules,
    check_entries_match_payments,
    check_chains,
    check_changelog,
    check_insufficient_funds,
    check_debit_order,
    check_undecodable_outputs,
)


def analyze(snap: Snapshot, ledger: LedgerSettings, examples: int = EXAMPLES) -> Report:
    """Every invariant checked over `snap`; the report names each violation."""
    report = Report(examples=examples, notes=list(snap.notes))
    ix = build_index(snap, ledger)
    for check in CHECKS:
        check(ix, ledger, report)
    summarize(ix, report)
    return report


def summarize(ix: Index, report: Report) -> None:
    """Fills the report's summary counts and its rejections by reason (first rejection of
    each payment id in the inputs)."""
    snap = ix.snap
    reasons: Counter[str] = Counter()
    for pid in ix.first:
        rejections = ix.rejections.get(pid)
        if rejections:
            reasons[rejections[0].reason] += 1
    report.rejected_by_reason = reasons
    report.summary = {
        "inputs": snap.inputs,
        "distinct payment ids": len(ix.first),
        "duplicates dropped": ix.duplicates,
        "undecodable inputs": len(snap.undecodable_payments),
        "posted": sum(1 for p in ix.postings if p.debit is not None),
        "rejected": sum(1 for pid in ix.rejections if pid in ix.first),
        "idempotency conflicts": sum(len(group) for group in ix.conflicts.values()),
        "replies": sum(1 for r in snap.replies if r.payment_id in ix.first),
        "dead-lettered": ix.dead_payments,
        "credit legs": len(snap.legs),
        "entries": len(snap.entries),
        "accounts": len({e.account for e in snap.entries}),
        "currencies": len({e.currency for e in snap.entries}),
        "changelog balances": len(snap.balances),
    }
