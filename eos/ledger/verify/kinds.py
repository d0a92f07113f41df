"""The violation kinds, and KINDS: the order the report lists them in."""

from __future__ import annotations

MISSING_OUTCOME = "missing outcome"
MULTIPLE_OUTCOMES = "multiple outcomes"
DEBIT_WITHOUT_CREDIT = "debit without credit"
LEG_WITHOUT_CREDIT_ENTRY = "credit leg without credit entry"
CREDIT_WITHOUT_LEG = "credit entry without credit leg"
CREDIT_WITHOUT_DEBIT = "credit without debit"
UNKNOWN_PAYMENT = "output for unknown payment"
UNMATCHED_DEAD_LETTER = "unmatched dead letter"
DUPLICATE_ENTRY = "duplicate entry"
DUPLICATE_REJECTION = "duplicate rejection"
DUPLICATE_LEG = "duplicate credit leg"
UNBALANCED_CURRENCY = "currency does not balance"
AMOUNT_MISMATCH = "debit and credit amounts differ"
POSTED_AGAINST_RULES = "posted against the rules"
ENTRY_MISMATCH = "entry does not match its payment"
SEQ_GAP = "account_seq gap"
BALANCE_CHAIN = "balance chain broken"
CHANGELOG_MISMATCH = "balance differs from changelog"
NEGATIVE_BALANCE = "negative balance"
DEBIT_ORDER = "debits out of input order"
UNDECODABLE_OUTPUT = "undecodable output"
CONFLICT_MISMATCH = "idempotency conflicts differ from the inputs"
REPLY_COUNT = "reply missing or repeated"
REPLY_MISMATCH = "reply differs from the outcome"
DEDUP_MISMATCH = "dedup store differs from the outcome"
UNJUSTIFIED_REJECTION = "insufficient funds not borne out"

KINDS = (
    MISSING_OUTCOME,
    MULTIPLE_OUTCOMES,
    CONFLICT_MISMATCH,
    REPLY_COUNT,
    REPLY_MISMATCH,
    DEDUP_MISMATCH,
    DEBIT_WITHOUT_CREDIT,
    LEG_WITHOUT_CREDIT_ENTRY,
    CREDIT_WITHOUT_LEG,
    CREDIT_WITHOUT_DEBIT,
    UNKNOWN_PAYMENT,
    UNMATCHED_DEAD_LETTER,
    DUPLICATE_ENTRY,
    DUPLICATE_REJECTION,
    DUPLICATE_LEG,
    UNBALANCED_CURRENCY,
    AMOUNT_MISMATCH,
    POSTED_AGAINST_RULES,
    ENTRY_MISMATCH,
    SEQ_GAP,
    BALANCE_CHAIN,
    CHANGELOG_MISMATCH,
    NEGATIVE_BALANCE,
    UNJUSTIFIED_REJECTION,
    DEBIT_ORDER,
    UNDECODABLE_OUTPUT,
)
