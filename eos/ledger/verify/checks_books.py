"""Checks of the books themselves: nothing twice, every currency balances, each account's
entries chain up to its changelog balance, and debits follow input order. Each takes
(index, ledger settings, report) and adds violations."""

from __future__ import annotations

from collections import Counter, defaultdict

from eos.ledger.settings import LedgerSettings
from eos.ledger.verify.index import Index
from eos.ledger.verify.kinds import (
    BALANCE_CHAIN,
    CHANGELOG_MISMATCH,
    DEBIT_ORDER,
    DUPLICATE_ENTRY,
    DUPLICATE_LEG,
    DUPLICATE_REJECTION,
    NEGATIVE_BALANCE,
    SEQ_GAP,
    UNBALANCED_CURRENCY,
    UNDECODABLE_OUTPUT,
    UNJUSTIFIED_REJECTION,
)
from eos.ledger.verify.report import Report
from eos.ledger.verify.rows import Position, place

__all__ = [
    "check_chains",
    "check_changelog",
    "check_currencies_balance",
    "check_debit_order",
    "check_duplicate_entries",
    "check_duplicate_legs",
    "check_duplicate_rejections",
    "check_insufficient_funds",
    "check_undecodable_outputs",
]


def check_duplicate_entries(ix: Index, s: LedgerSettings, report: Report) -> None:
    """Each entry id appears once."""
    for entry_id, group in ix.entries_by_id.items():
        if len(group) > 1:
            places = ", ".join(place(s.entries_topic, e.partition, e.offset) for e in group)
            report.add(DUPLICATE_ENTRY, f"entry {entry_id} appears {len(group)} times ({places})")


def check_duplicate_rejections(ix: Index, s: LedgerSettings, report: Report) -> None:
    """A payment is rejected at most once."""
    for pid, group in ix.rejections.items():
        if len(group) > 1:
            places = ", ".join(place(s.rejected_topic, r.partition, r.offset) for r in group)
            report.add(DUPLICATE_REJECTION, f"payment {pid} rejected {len(group)} times ({places})")


def check_duplicate_legs(ix: Index, s: LedgerSettings, report: Report) -> None:
    """A payment has at most one credit leg."""
    for pid, group in ix.legs.items():
        if len(group) > 1:
            places = ", ".join(place(s.credits_topic, g.partition, g.offset) for g in group)
            report.add(DUPLICATE_LEG, f"payment {pid} has {len(group)} credit legs ({places})")


def _currency_totals(ix: Index) -> Counter[str]:
    """The sum of all entries' deltas per currency."""
    totals: Counter[str] = Counter()
    for e in ix.snap.entries:
        totals[e.currency] += e.delta_minor
    return totals


def check_currencies_balance(ix: Index, s: LedgerSettings, report: Report) -> None:
    """Debits equal credits: each currency's entries sum to 0."""
    for currency, total in sorted(_currency_totals(ix).items()):
        if total != 0:
            report.add(UNBALANCED_CURRENCY, f"{currency}: entries sum to {total}, not 0")


def check_chains(ix: Index, s: LedgerSettings, report: Report) -> None:
    """Per (account, currency), in entry order: account_seq is 1, 2, 3...; balance_after is
    the previous balance plus delta; an internal account never goes below zero."""
    last: dict[tuple[str, str], tuple[int, int]] = {}
    external = s.external_prefix
    for e in ix.snap.entries:
        key = (e.account, e.currency)
        seq, balance = last.get(key, (0, 0))
        last[key] = (e.account_seq, e.balance_after_minor)
        if (
            e.account_seq == seq + 1
            and e.balance_after_minor == balance + e.delta_minor
            and (e.balance_after_minor >= 0 or e.account.startswith(external))
        ):
            continue  # the common case, decided without building any message
        name = f"account {e.account} {e.currency}: entry {e.entry_id}"
        where = place(s.entries_topic, e.partition, e.offset)
        if e.account_seq != seq + 1:
            report.add(
                SEQ_GAP, f"{name} ({where}) has account_seq {e.account_seq}, expected {seq + 1}"
            )
        if e.balance_after_minor != balance + e.delta_minor:
            report.add(
                BALANCE_CHAIN,
                f"{name} ({where}) has balance_after {e.balance_after_minor}, expected "
                f"{balance} + {e.delta_minor} = {balance + e.delta_minor}",
            )
        if e.balance_after_minor < 0 and not e.account.startswith(external):
            report.add(NEGATIVE_BALANCE, f"{name} ({where}) leaves {e.balance_after_minor}")


def check_changelog(ix: Index, s: LedgerSettings, report: Report) -> None:
    """The changelog's balance of each account is where its entries end, and an account
    without entries has none (or a zero one)."""
    balances = ix.snap.balances
    for (account, currency), (seq, balance) in ix.chain_ends.items():
        stored = balances.get(f"{account}|{currency}")
        if stored is None:
            report.add(
                CHANGELOG_MISMATCH,
                f"account {account} {currency}: entries end at balance {balance} "
                f"(account_seq {seq}), {s.balances_changelog} has no balance",
            )
        elif stored != (balance, seq):
            report.add(
                CHANGELOG_MISMATCH,
                f"account {account} {currency}: entries end at balance {balance} "
                f"(account_seq {seq}), {s.balances_changelog} has b={stored[0]} n={stored[1]}",
            )
    for name, (b, n) in balances.items():
        account, _, currency = name.rpartition("|")
        if (account, currency) not in ix.chain_ends and (b, n) != (0, 0):
            report.add(
                CHANGELOG_MISMATCH,
                f"account {account} {currency}: {s.balances_changelog} has b={b} n={n} "
                "but there are no entries",
            )


def check_insufficient_funds(ix: Index, s: LedgerSettings, report: Report) -> None:
    """An INSUFFICIENT_FUNDS rejection is borne out by the debit account's chain: between
    the debits posted before and after it (input order), some balance the account had was
    below the amount. An external account is never short of funds."""
    short = [
        (pid, ix.first[pid])
        for pid, group in ix.rejections.items()
        if group[0].reason == "INSUFFICIENT_FUNDS" and pid in ix.first
    ]
    if not short:
        return
    wanted = {(pay.debit_account, pay.currency) for _pid, pay in short}
    chains: defaultdict[tuple[str, str], list[tuple[Position | None, int]]] = defaultdict(list)
    for e in ix.snap.entries:
        key = (e.account, e.currency)
        if key in wanted:
            # A debit's place in the input order; a credit's is unknown (None).
            pay = ix.first.get(e.payment_id) if e.side == "DEBIT" else None
            chains[key].append(
                ((pay.partition, pay.offset) if pay else None, e.balance_after_minor)
            )
    for pid, pay in short:
        name = f"payment {pid} ({place(s.payments_topic, pay.partition, pay.offset)})"
        if pay.debit_account.startswith(s.external_prefix):
            report.add(UNJUSTIFIED_REJECTION, f"{name}: external account {pay.debit_account}")
            continue
        held = _balances_around(
            chains[(pay.debit_account, pay.currency)], (pay.partition, pay.offset)
        )
        if min(held) >= pay.amount_minor:
            report.add(
                UNJUSTIFIED_REJECTION,
                f"{name}: rejected for {pay.amount_minor} {pay.currency} but "
                f"{pay.debit_account} held at least {min(held)} at that point",
            )


def _balances_around(chain: list[tuple[Position | None, int]], at: Position) -> list[int]:
    """The balances an account may have had when the input at `at` was decided: after its
    last earlier debit (0 before any), and after each credit up to its next debit."""
    held = [0]
    for position, balance in chain:
        if position is not None and position > at:
            break
        if position is not None:
            held = [balance]
        else:
            held.append(balance)
    return held


def _debits_by_account(ix: Index) -> dict[str, list[tuple[Position, str]]]:
    """Per account, its debits (each entry id once) as (first input position, payment id)."""
    order: dict[str, list[tuple[Position, str]]] = defaultdict(list)
    seen: set[str] = set()
    for e in ix.snap.entries:
        if e.side != "DEBIT" or e.entry_id in seen:
            continue
        seen.add(e.entry_id)
        pay = ix.first.get(e.payment_id)
        if pay is not None:
            order[e.account].append(((pay.partition, pay.offset), e.payment_id))
    return order


def check_debit_order(ix: Index, s: LedgerSettings, report: Report) -> None:
    """Each account's debits were posted in the order of their payments' first input."""
    for account, debits in _debits_by_account(ix).items():
        latest: tuple[Position, str] | None = None
        late = 0
        example = ""
        for item in debits:
            if latest is not None and item[0] < latest[0]:
                late += 1
                if not example:
                    example = (
                        f"{item[1]} ({place(s.payments_topic, *item[0])}) was posted after "
                        f"{latest[1]} ({place(s.payments_topic, *latest[0])})"
                    )
            elif latest is None or item[0] > latest[0]:
                latest = item
        if late:
            report.add(
                DEBIT_ORDER, f"account {account}: {late} debit(s) out of order; first: {example}"
            )


def check_undecodable_outputs(ix: Index, s: LedgerSettings, report: Report) -> None:
    """Every output record decodes (what did not was noted while reading)."""
    for message in ix.snap.undecodable_outputs:
        report.add(UNDECODABLE_OUTPUT, message)
