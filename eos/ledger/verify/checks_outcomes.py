"""Checks that each payment has exactly one outcome, and that a posting is complete and
matches its payment. Each takes (index, ledger settings, report) and adds violations."""

from __future__ import annotations

from eos.ledger.currencies import currency
from eos.ledger.rules import ACCOUNT
from eos.ledger.settings import LedgerSettings
from eos.ledger.verify.index import Index, Posting
from eos.ledger.verify.kinds import (
    AMOUNT_MISMATCH,
    CREDIT_WITHOUT_DEBIT,
    CREDIT_WITHOUT_LEG,
    DEBIT_WITHOUT_CREDIT,
    ENTRY_MISMATCH,
    LEG_WITHOUT_CREDIT_ENTRY,
    MISSING_OUTCOME,
    MULTIPLE_OUTCOMES,
    POSTED_AGAINST_RULES,
    UNKNOWN_PAYMENT,
    UNMATCHED_DEAD_LETTER,
)
from eos.ledger.verify.report import Report
from eos.ledger.verify.rows import Entry, Payment, place

__all__ = [
    "check_amounts",
    "check_entries_match_payments",
    "check_outcomes",
    "check_posted_within_rules",
    "check_postings_complete",
    "check_undecodable_inputs",
    "check_unknown_payments",
    "check_unmatched_dead_letters",
]


def check_outcomes(ix: Index, s: LedgerSettings, report: Report) -> None:
    """Each payment id is posted, rejected or (every input of it) dead-lettered: exactly
    one, and once; each dead-lettered input is in the DLQ once."""
    for pid, pay in ix.first.items():
        rejections, dead = ix.rejections.get(pid, []), ix.dead.get(pid, [])
        # A dead letter without its input's position counts against the id itself.
        unplaced = [d for d in dead if d.source not in ix.dead_inputs]
        kinds = []
        if pid in ix.debits or pid in ix.credits or pid in ix.legs:
            kinds.append("posted")
        if rejections:
            kinds.append(f"rejected ({rejections[0].reason})")
        if pid in ix.only_dead or unplaced:
            kinds.append(f"dead-lettered ({dead[0].reason})")
        if not kinds:
            where = place(s.payments_topic, pay.partition, pay.offset)
            report.add(
                MISSING_OUTCOME, f"payment {pid} ({where}): no entry, rejection or dead letter"
            )
        elif len(kinds) > 1 or len(unplaced) > 1:
            where = place(s.payments_topic, pay.partition, pay.offset)
            extra = f", dead-lettered {len(unplaced)} times" if len(unplaced) > 1 else ""
            report.add(MULTIPLE_OUTCOMES, f"payment {pid} ({where}): {' and '.join(kinds)}{extra}")
    for position, group in ix.dead_inputs.items():
        if len(group) > 1:
            where = place(s.payments_topic, *position)
            report.add(MULTIPLE_OUTCOMES, f"input {where} is in the DLQ {len(group)} times")


def check_undecodable_inputs(ix: Index, s: LedgerSettings, report: Report) -> None:
    """Each undecodable input is in the DLQ exactly once."""
    for position, why in ix.snap.undecodable_payments.items():
        where = place(s.payments_topic, *position)
        found = ix.dead_undecodable.get(position, [])
        if not found:
            report.add(MISSING_OUTCOME, f"undecodable input {where} ({why}) is not in the DLQ")
        elif len(found) > 1:
            report.add(
                MULTIPLE_OUTCOMES, f"undecodable input {where} is in the DLQ {len(found)} times"
            )


def check_postings_complete(ix: Index, s: LedgerSettings, report: Report) -> None:
    """A posted payment has its debit entry, its credit leg and its credit entry."""
    for p in ix.postings:
        pid, debit, credit, leg = p.payment_id, p.debit, p.credit, p.leg
        if debit is not None and credit is None:
            if leg is not None:
                where = place(s.credits_topic, leg.partition, leg.offset)
                report.add(
                    LEG_WITHOUT_CREDIT_ENTRY,
                    f"payment {pid}: credit leg {where} but no credit entry {pid}:C",
                )
                continue
            dead_legs = ix.dead_legs.get(pid)
            why = (
                f"credit leg dead-lettered ({dead_legs[0].reason})"
                if dead_legs
                else f"no credit leg in {s.credits_topic}"
            )
            report.add(
                DEBIT_WITHOUT_CREDIT, f"payment {pid}: debit entry {pid}:D but no credit ({why})"
            )
        elif debit is None:
            what = f"credit entry {pid}:C" if credit is not None else "a credit leg"
            report.add(CREDIT_WITHOUT_DEBIT, f"payment {pid}: {what} but no debit entry {pid}:D")
        elif leg is None:
            report.add(CREDIT_WITHOUT_LEG, f"payment {pid}: credit entry {pid}:C but no credit leg")


def check_unknown_payments(ix: Index, s: LedgerSettings, report: Report) -> None:
    """Every entry, credit leg and rejection belongs to a payment in the inputs."""
    named = {*ix.debits, *ix.credits, *ix.legs, *ix.rejections, *ix.conflicts}
    for pid in sorted(named - set(ix.first)):
        what = [
            name
            for name, group in (
                ("entries", ix.debits.get(pid, []) + ix.credits.get(pid, [])),
                ("credit legs", ix.legs.get(pid, [])),
                ("rejections", ix.rejections.get(pid, []) + ix.conflicts.get(pid, [])),
            )
            if group
        ]
        report.add(UNKNOWN_PAYMENT, f"payment {pid} has {', '.join(what)} but is not in the inputs")


def check_unmatched_dead_letters(ix: Index, s: LedgerSettings, report: Report) -> None:
    """Every dead letter of the payments topic names an input that is there."""
    for d in ix.unmatched_dead:
        where = place(ix.snap.dlq_topic, d.partition, d.offset)
        src = "?" if d.source is None else place(s.payments_topic, *d.source)
        report.add(
            UNMATCHED_DEAD_LETTER,
            f"{where} ({d.reason}) names input {src}, which is not in "
            f"{s.payments_topic}" + (f" (payment id {d.payment_id})" if d.payment_id else ""),
        )


def check_amounts(ix: Index, s: LedgerSettings, report: Report) -> None:
    """A payment's debit and credit entries move the same amount."""
    for p in ix.postings:
        debit, credit = p.debit, p.credit
        if debit is not None and credit is not None and debit.delta_minor != -credit.delta_minor:
            report.add(
                AMOUNT_MISMATCH,
                f"payment {p.payment_id}: debit {debit.delta_minor} {debit.currency}, "
                f"credit {credit.delta_minor} {credit.currency}",
            )


def check_posted_within_rules(ix: Index, s: LedgerSettings, report: Report) -> None:
    """A posted payment keeps the rules: its currency is in the table and accepted, its
    amount within the currency's limit, both accounts match the account pattern in full."""
    for p in ix.postings:
        if p.debit is None:
            continue
        pay = p.payment
        row = currency(pay.currency)
        broken = []
        if row is None or pay.currency not in s.currencies:
            broken.append(f"currency {pay.currency!r} is not accepted")
        elif not 0 < pay.amount_minor <= row.max_minor:
            broken.append(f"amount {pay.amount_minor} is outside 1..{row.max_minor}")
        for role, account in (("debit", pay.debit_account), ("credit", pay.credit_account)):
            if not ACCOUNT.fullmatch(account):
                broken.append(f"{role} account {account!r} is malformed")
        if broken:
            report.add(POSTED_AGAINST_RULES, f"payment {p.payment_id}: {'; '.join(broken)}")


def check_entries_match_payments(ix: Index, s: LedgerSettings, report: Report) -> None:
    """Entry ids, accounts, amounts and currencies (and the credit leg) are the payment's."""
    for p in ix.postings:
        problems = _posting_problems(p)
        if problems:
            report.add(ENTRY_MISMATCH, f"payment {p.payment_id}: {'; '.join(problems)}")


def _posting_problems(p: Posting) -> list[str]:
    pay, leg = p.payment, p.leg
    problems = []
    if p.debit is not None:
        problems += _entry_problems(p.debit, pay, "DEBIT", "D")
    if p.credit is not None:
        problems += _entry_problems(p.credit, pay, "CREDIT", "C")
    if leg is not None and (
        leg.debit_account,
        leg.credit_account,
        leg.amount_minor,
        leg.currency,
    ) != (pay.debit_account, pay.credit_account, pay.amount_minor, pay.currency):
        problems.append("credit leg differs from the payment")
    return problems


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
