"""What the ledger remembers of each payment id it decided: when, which request, what answer.

A debit's record in the dedup store is {"t": first seen (ms, processing time), "f": the
request's fingerprint, "s": status, "r": rejection reason, "b": debit balance after}. It is
written in the same transaction as the outcome it describes, so a retry sees either no
decision or the one that committed: a retry with the same fields gets that outcome again,
one with other fields is a conflict. Credit legs only need "seen" (ms, an int).

Scope: a store partition is a debit account's partition, so an id is known to the
accounts that share it. Window: processing time, not the request's own timestamp, which a
client sets: a skewed or replayed clock must not widen or dodge the window, and expiry
then walks the store in write order. Outside the window an id is new again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, NamedTuple

from eos.engine.state import StateStore

__all__ = ["Decision", "Dedup", "fingerprint", "request_fingerprint"]

PURGE_EVERY = 500  # remembered ids between scans for expired ones
PURGE_AT_MOST = 1000  # expired ids deleted per scan: a scan stays a small part of a batch


class Decision(NamedTuple):
    """A payment id's outcome as first decided. `fingerprint` is "" when not known."""

    seen_ms: int
    fingerprint: str
    status: str | None
    reason: str | None
    balance_after: int | None


def fingerprint(fields: Iterable[object]) -> str:
    """A short digest of a request's identifying fields (64 bits: accidental reuse of an
    id with other fields is what it must tell apart, not an adversary)."""
    text = "\x1f".join("" if f is None else str(f) for f in fields)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def request_fingerprint(
    debit_account: str, credit_account: str, amount_minor: int, currency: str, reference: str | None
) -> str:
    """What makes a retry the same payment: every field of the request but its id and
    requested_at, which a client may stamp anew when it retries."""
    return fingerprint((debit_account, credit_account, amount_minor, currency, reference))


def _seen_ms(value: Any) -> int:
    return int(value["t"]) if isinstance(value, dict) else int(value)


class Dedup:
    """Lookups and writes of the dedup store, with expiry by processing time."""

    def __init__(self, store: StateStore, window_s: int) -> None:
        self.store = store
        self.window_ms = window_s * 1000
        self._since_purge = 0
        # Per partition: when its oldest committed id expires, as the last walk found it.
        # No walk before then: it would only find that id again. (Late by a batch at
        # most for ids still staged meanwhile; `decision` checks the window itself.)
        self._due: dict[int, int] = {}

    def decision(self, p: int, key: str, now_ms: int) -> Decision | None:
        """The decision remembered for `key` within the window, if any."""
        value = self.store.get(p, key)
        if value is None or now_ms - _seen_ms(value) >= self.window_ms:
            return None
        if not isinstance(value, dict):
            return Decision(int(value), "", None, None, None)
        return Decision(
            int(value["t"]), value.get("f", ""), value.get("s"), value.get("r"), value.get("b")
        )

    def remember(self, p: int, key: str, now_ms: int, decision: Decision | None = None) -> None:
        """Stage `key` as seen now, with the outcome decided for it (debits)."""
        if decision is None:
            self.store.put(p, key, now_ms)
        else:
            self.store.put(
                p,
                key,
                {
                    "t": now_ms,
                    "f": decision.fingerprint,
                    "s": decision.status,
                    "r": decision.reason,
                    "b": decision.balance_after,
                },
            )
        self._since_purge += 1
        if self._since_purge >= PURGE_EVERY:
            self._since_purge = 0
            self._purge(p, now_ms)

    def _purge(self, p: int, now_ms: int) -> None:
        """Forget ids older than the window; the oldest writes come first."""
        if now_ms < self._due.get(p, 0):
            return
        horizon = now_ms - self.window_ms
        self._due[p] = now_ms + self.window_ms  # an empty store: what comes is newer
        for count, (key, value) in enumerate(self.store.committed_items(p)):
            if count >= PURGE_AT_MOST:
                self._due[p] = 0  # more may have expired: walk again next time
                break
            if _seen_ms(value) >= horizon:
                self._due[p] = _seen_ms(value) + self.window_ms
                break
            self.store.delete(p, key)
