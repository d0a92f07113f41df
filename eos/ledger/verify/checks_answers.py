"""Checks of what the ledger answered and remembered: a reused id is refused exactly when
its fields differ, every request that asked gets one reply that tells its outcome, and the
dedup store holds each decided id with that outcome. Each takes (index, ledger settings,
report) and adds violations.

They assume the run is shorter than the dedup window (an id forgotten by then is decided
afresh, which these checks would name).
"""

from __future__ import annotations

from collections import Counter, defaultdict

from eos.ledger.dedup import request_fingerprint
from eos.ledger.settings import LedgerSettings
from eos.ledger.verify.index import CONFLICT, Index
from eos.ledger.verify.kinds import (
    CONFLICT_MISMATCH,
    DEDUP_MISMATCH,
    REPLY_COUNT,
    REPLY_MISMATCH,
)
from eos.ledger.verify.report import Report
from eos.ledger.verify.rows import Payment, place

__all__ = ["check_conflicts", "check_dedup_store", "check_replies"]

# What a reply should say: status, reason, debit balance after, replay.
Answer = tuple[str, str | None, int | None, bool]


def check_conflicts(ix: Index, s: LedgerSettings, report: Report) -> None:
    """Each later input of an id with other fields than its first is refused once as an
    idempotency conflict; a later input with the same fields never is."""
    for pid in {*ix.later, *ix.conflicts}:
        first = ix.first.get(pid)
        if first is None:
            continue  # named by check_unknown_payments
        differing = sum(1 for pay in ix.later.get(pid, []) if pay.fields() != first.fields())
        refused = len(ix.conflicts.get(pid, []))
        if differing != refused:
            report.add(
                CONFLICT_MISMATCH,
                f"payment {pid}: {differing} later input(s) with other fields than its first "
                f"({place(s.payments_topic, first.partition, first.offset)}), "
                f"{refused} {CONFLICT} rejection(s)",
            )


def _outcome(ix: Index, pid: str) -> Answer | None:
    """The answer the id's first input got, if it was decided."""
    debits, rejections = ix.debits.get(pid), ix.rejections.get(pid)
    if debits:
        return ("POSTED", None, debits[0].balance_after_minor, False)
    if rejections:
        return ("REJECTED", rejections[0].reason, None, False)
    return None


def _expected(ix: Index, pay: Payment) -> Answer | None:
    """The reply an input that asked for one should have had; None: no reply."""
    pid = pay.payment_id
    first = ix.first[pid]
    outcome = _outcome(ix, pid)
    if pay is first:
        if outcome is not None and outcome[1] == "INVALID_REPLY_TO":
            return None
        return outcome
    if pay.fields() != first.fields():
        return ("REJECTED", CONFLICT, None, False)
    return None if outcome is None else (*outcome[:3], True)


def check_replies(ix: Index, s: LedgerSettings, report: Report) -> None:
    """Every input that named a reply topic the ledger may write to gets exactly one reply
    there, with its correlation id and its outcome (a retry's marked as a replay). Replies
    for payments not in the inputs are another ledger's and are left alone."""
    expected: defaultdict[tuple[str, str, str | None], list[Answer]] = defaultdict(list)
    for pay in ix.asking:
        topic = pay.reply_to or ""
        if topic not in ix.snap.reply_topics or pay.payment_id in ix.only_dead:
            continue
        answer = _expected(ix, pay)
        if answer is not None:
            expected[(topic, pay.payment_id, pay.correlation_id)].append(answer)
    got: defaultdict[tuple[str, str, str | None], list[Answer]] = defaultdict(list)
    for r in ix.snap.replies:
        if r.payment_id in ix.first:
            answer = (r.status, r.reason, r.debit_balance_after_minor, r.replay)
            got[(r.topic, r.payment_id, r.correlation_id)].append(answer)
    for key in sorted({*expected, *got}, key=str):
        want, have = expected.get(key, []), got.get(key, [])
        topic, pid, correlation = key
        name = f"payment {pid} correlation {correlation!r} on {topic}"
        if len(want) != len(have):
            report.add(REPLY_COUNT, f"{name}: {len(have)} reply(ies), expected {len(want)}")
        elif Counter(want) != Counter(have):
            report.add(REPLY_MISMATCH, f"{name}: replied {sorted(have)}, expected {sorted(want)}")


def check_dedup_store(ix: Index, s: LedgerSettings, report: Report) -> None:
    """The dedup changelog holds each decided id with its first input's fingerprint and
    its outcome, each credited id, and no id that is not in the inputs."""
    store = ix.snap.dedup
    if store is None:
        return  # not read: the topic does not exist
    for pid, pay in ix.first.items():
        outcome = _outcome(ix, pid)
        key = f"D:{pid}"
        if outcome is None or key in ix.snap.dedup_purged:
            continue
        if key not in store:
            report.add(DEDUP_MISMATCH, f"payment {pid} was decided but {key} is not remembered")
            continue
        kept = store[key]
        if kept is None:
            continue  # seen-only: kept before outcomes were
        fingerprint = request_fingerprint(*pay.fields())
        if kept != (fingerprint, outcome[0], outcome[1]):
            report.add(
                DEDUP_MISMATCH,
                f"payment {pid}: {key} holds {kept}, expected "
                f"{(fingerprint, outcome[0], outcome[1])}",
            )
    for pid in ix.credits:
        key = f"C:{pid}"
        if key not in store and key not in ix.snap.dedup_purged:
            report.add(DEDUP_MISMATCH, f"payment {pid} was credited but {key} is not remembered")
    for key in store:
        if key[2:] not in ix.first:
            report.add(DEDUP_MISMATCH, f"{key} is remembered but no input has that id")
