"""Validation of a payment request: each failure is a rejection with a reason code."""

from __future__ import annotations

import re

from eos.ledger.currencies import currency
from eos.ledger.models import PaymentRequest, RejectionReason
from eos.ledger.settings import LedgerSettings

__all__ = ["ACCOUNT", "canonical_payment_id", "validate"]

# Checked with fullmatch: `$` would also match before a final newline. ASCII only.
ACCOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9:._-]{0,63}", re.ASCII)
# The RFC 9562 string form, either case; not the other spellings uuid.UUID accepts
# (braces, urn:uuid:, bare hex), so that one payment has one id.
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I | re.A)


def canonical_payment_id(raw: str) -> str | None:
    """The payment id in its canonical (lower-case) form, or None when it is not a UUID.
    UUIDs are case-insensitive: every hop and the dedup store use this form."""
    return raw.lower() if _UUID.fullmatch(raw) else None


def validate(req: PaymentRequest, settings: LedgerSettings) -> tuple[RejectionReason, str] | None:
    """The first rule the request breaks, or None when it is well-formed."""
    if canonical_payment_id(req.payment_id) is None:
        return RejectionReason.INVALID_ID, f"payment id {req.payment_id!r} is not a UUID"
    for role, account in (("debit", req.debit_account), ("credit", req.credit_account)):
        if not ACCOUNT.fullmatch(account):
            return RejectionReason.INVALID_ACCOUNT, f"{role} account {account!r} is malformed"
    if req.debit_account == req.credit_account:
        return RejectionReason.SAME_ACCOUNT, f"debit and credit are both {req.debit_account}"
    if req.amount_minor <= 0:
        return RejectionReason.INVALID_AMOUNT, f"amount {req.amount_minor} is not positive"
    table = currency(req.currency)
    if table is None or req.currency not in settings.currencies:
        return RejectionReason.UNKNOWN_CURRENCY, f"currency {req.currency!r} is not accepted"
    if req.amount_minor > table.max_minor:
        return (
            RejectionReason.AMOUNT_TOO_LARGE,
            f"amount {table.units(req.amount_minor)} exceeds {table.units(table.max_minor)}",
        )
    return None
