"""Python types of the ledger's records. `schemas/ledger/*.avsc` are the source of truth;
tests/unit/ledger/test_models_match_schemas.py fails when these drift from them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel


class Side(StrEnum):
    DEBIT = "DEBIT"
    CREDIT = "CREDIT"


class RejectionReason(StrEnum):
    INVALID_ID = "INVALID_ID"
    INVALID_ACCOUNT = "INVALID_ACCOUNT"
    SAME_ACCOUNT = "SAME_ACCOUNT"
    INVALID_AMOUNT = "INVALID_AMOUNT"
    AMOUNT_TOO_LARGE = "AMOUNT_TOO_LARGE"
    UNKNOWN_CURRENCY = "UNKNOWN_CURRENCY"
    INVALID_REPLY_TO = "INVALID_REPLY_TO"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"


class OutcomeStatus(StrEnum):
    POSTED = "POSTED"
    REJECTED = "REJECTED"


class PaymentRequest(BaseModel):
    payment_id: str
    debit_account: str
    credit_account: str
    amount_minor: int
    currency: str
    requested_at: datetime
    reference: str | None = None


class CreditLeg(BaseModel):
    payment_id: str
    debit_account: str
    credit_account: str
    amount_minor: int
    currency: str
    requested_at: datetime


class LedgerEntry(BaseModel):
    entry_id: str
    payment_id: str
    account: str
    counterparty: str
    side: Side
    currency: str
    delta_minor: int
    balance_after_minor: int
    account_seq: int
    posted_at: datetime


class PaymentRejection(BaseModel):
    payment_id: str
    debit_account: str
    credit_account: str
    amount_minor: int
    currency: str
    reason: RejectionReason
    detail: str
    rejected_at: datetime


class PaymentOutcome(BaseModel):
    payment_id: str
    correlation_id: str | None = None
    status: OutcomeStatus
    reason: str | None = None
    debit_balance_after_minor: int | None = None
    replay: bool = False
