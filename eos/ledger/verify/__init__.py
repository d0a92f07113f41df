"""`eos verify ledger`: read every committed record of the ledger's topics and check its
invariants.

For each distinct payment id there is exactly one outcome (posted: debit entry, credit leg
and credit entry; or one rejection; or one dead letter), no entry or rejection appears
twice, every currency balances, each account's entries chain (account_seq 1, 2, 3...,
balance_after = previous + delta) up to its balance in the changelog, internal accounts
never go negative, and each account's debits were posted in input order.

Every topic is read with read_committed up to its end (partition EOF), so run it once the
processor has caught up: a payment still in flight shows up as a violation.

rows: the decoded records; collect: reading them; index, checks*: the invariants;
report: what was found.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient

from eos.kafka.reader import ProgressCallback, admitted
from eos.ledger.settings import LedgerSettings
from eos.ledger.verify.checks import analyze
from eos.ledger.verify.collect import snapshot
from eos.ledger.verify.kinds import (
    AMOUNT_MISMATCH,
    BALANCE_CHAIN,
    CHANGELOG_MISMATCH,
    CONFLICT_MISMATCH,
    CREDIT_WITHOUT_DEBIT,
    CREDIT_WITHOUT_LEG,
    DEBIT_ORDER,
    DEBIT_WITHOUT_CREDIT,
    DEDUP_MISMATCH,
    DUPLICATE_ENTRY,
    DUPLICATE_LEG,
    DUPLICATE_REJECTION,
    ENTRY_MISMATCH,
    KINDS,
    LEG_WITHOUT_CREDIT_ENTRY,
    MISSING_OUTCOME,
    MULTIPLE_OUTCOMES,
    NEGATIVE_BALANCE,
    POSTED_AGAINST_RULES,
    REPLY_COUNT,
    REPLY_MISMATCH,
    SEQ_GAP,
    UNBALANCED_CURRENCY,
    UNDECODABLE_OUTPUT,
    UNJUSTIFIED_REJECTION,
    UNKNOWN_PAYMENT,
    UNMATCHED_DEAD_LETTER,
)
from eos.ledger.verify.report import EXAMPLES, Report, Violation
from eos.ledger.verify.rows import (
    DeadLetter,
    Entry,
    Leg,
    Payment,
    Position,
    Rejection,
    Reply,
    Snapshot,
)

__all__ = [
    "AMOUNT_MISMATCH",
    "BALANCE_CHAIN",
    "CHANGELOG_MISMATCH",
    "CONFLICT_MISMATCH",
    "CREDIT_WITHOUT_DEBIT",
    "CREDIT_WITHOUT_LEG",
    "DEBIT_ORDER",
    "DEBIT_WITHOUT_CREDIT",
    "DEDUP_MISMATCH",
    "DUPLICATE_ENTRY",
    "DUPLICATE_LEG",
    "DUPLICATE_REJECTION",
    "ENTRY_MISMATCH",
    "EXAMPLES",
    "KINDS",
    "LEG_WITHOUT_CREDIT_ENTRY",
    "MISSING_OUTCOME",
    "MULTIPLE_OUTCOMES",
    "NEGATIVE_BALANCE",
    "POSTED_AGAINST_RULES",
    "REPLY_COUNT",
    "REPLY_MISMATCH",
    "SEQ_GAP",
    "UNBALANCED_CURRENCY",
    "UNDECODABLE_OUTPUT",
    "UNJUSTIFIED_REJECTION",
    "UNKNOWN_PAYMENT",
    "UNMATCHED_DEAD_LETTER",
    "DeadLetter",
    "Entry",
    "Leg",
    "Payment",
    "Position",
    "Rejection",
    "Reply",
    "Report",
    "Snapshot",
    "Violation",
    "analyze",
    "snapshot",
    "verify",
]


def verify(
    bootstrap_servers: str,
    schema_registry_url: str,
    ledger: LedgerSettings | None = None,
    dlq_topic: str = "eos.dlq",
    *,
    client_config: Mapping[str, Any] | None = None,
    registry: SchemaRegistryClient | None = None,
    timeout: float = 120.0,
    examples: int = EXAMPLES,
    progress: ProgressCallback | None = None,
) -> Report:
    """Read the ledger's topics (read_committed, to their end) and check every invariant.

    `client_config` adds librdkafka settings (security) to the consumer's and `registry`
    replaces a plain client of `schema_registry_url`; to connect as the processor does,
    pass `reader_config(settings)` (eos.kafka.reader) and `make_registry(settings)`
    (eos.kafka.clients). `progress` is called while the topics are read.

    Raises Refused (a RuntimeError) when the cluster refuses the client's credentials,
    TimeoutError when a topic cannot be read to its end within `timeout`.
    """
    started = time.monotonic()
    ledger = ledger or LedgerSettings()
    config = {"bootstrap.servers": bootstrap_servers, **(client_config or {})}
    # A bounded wait per request, as the processor's client has: a hung registry fails.
    registry = registry or SchemaRegistryClient({"url": schema_registry_url, "timeout": 10})
    # Refused credentials fail here at once, with the broker's reason; the snapshot's
    # admin clients would only wait out their timeouts and report a transport failure.
    admitted(config, timeout)
    # Millions of small tuples and no cycles: the cyclic collector would only slow us down.
    collecting = gc.isenabled()
    gc.disable()
    try:
        snap = snapshot(config, registry, ledger, dlq_topic, timeout, progress)
        report = analyze(snap, ledger, examples)
    finally:
        if collecting:
            gc.enable()
    report.seconds = time.monotonic() - started
    return report
