"""What became of each record the bad-input test sent: read the DLQ, the rejections and
the entries, match every record to its outcomes, and tabulate them by category."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient

from eos.engine import dlq as h
from eos.ledger.rules import canonical_payment_id
from eos.serde.avro import AvroDecoder
from eos.serde.schemas import contract
from eos.testing.cluster import KafkaCluster
from eos.testing.helpers import read_committed
from tests.integration.ledger.bad_input_cases import POSTED, Case

Position = tuple[int, int]  # (partition, offset) in the payments topic


@dataclass(frozen=True)
class DeadLetter:
    reason: str
    message: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]

    def keeps(self, case: Case) -> bool:
        """Key, value and the input's own headers as they were sent; a value cut to fit
        the DLQ is a prefix of the original, whose size and SHA-256 the headers give."""
        own = [(k, v) for k, v in case.headers if not k.startswith(h.PREFIX)]
        if self.key != case.key or [x for x in self.headers if x in own] != own:
            return False
        ours = _valued(self.headers)
        if h.header(ours, h.H_VALUE_TRUNCATED) != "true":
            return self.value == case.value
        original = case.value or b""
        return (
            original.startswith(self.value or b"")
            and h.header(ours, h.H_VALUE_SIZE) == str(len(original))
            and h.header(ours, h.H_VALUE_SHA256) == hashlib.sha256(original).hexdigest()
        )


@dataclass
class Outputs:
    dead: dict[Position, list[DeadLetter]] = field(default_factory=lambda: defaultdict(list))
    dead_elsewhere: int = 0  # dead letters of other topics (none expected in a private DLQ)
    rejections: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    entries: dict[str, list[tuple[str, int]]] = field(default_factory=lambda: defaultdict(list))


def _valued(headers: Sequence[tuple[str, bytes | None]]) -> list[tuple[str, bytes]]:
    return [(k, v) for k, v in headers if v is not None]


def collect(
    cluster: KafkaCluster, dlq_topic: str, payments: str, rejected: str, entries: str
) -> Outputs:
    out = Outputs()
    for msg in read_committed(cluster, dlq_topic, timeout=60):
        every: Any = msg.headers() or []
        headers = _valued(every)
        if h.header(headers, h.H_TOPIC) != payments:
            out.dead_elsewhere += 1
            continue
        at = (int(h.header(headers, h.H_PARTITION) or -1), int(h.header(headers, h.H_OFFSET) or -1))
        reason = h.header(headers, h.H_ERROR_REASON) or "?"
        message = h.header(headers, h.H_ERROR_MESSAGE) or ""
        out.dead[at].append(DeadLetter(reason, message, msg.key(), msg.value(), list(every)))
    registry = SchemaRegistryClient({"url": cluster.schema_registry_url, "timeout": 10})
    decoder = AvroDecoder(registry, contract("ledger/payment_rejection"))
    for msg in read_committed(cluster, rejected, timeout=60):
        rejection = decoder.decode(msg.value())
        out.rejections[rejection["payment_id"]].append(rejection["reason"])
    decoder = AvroDecoder(registry, contract("ledger/ledger_entry"))
    for msg in read_committed(cluster, entries, timeout=60):
        entry = decoder.decode(msg.value())
        out.entries[entry["payment_id"]].append((entry["side"], entry["delta_minor"]))
    return out


def _pid(case: Case) -> str | None:
    if case.payment_id is None:
        return None
    return canonical_payment_id(case.payment_id) or case.payment_id


def observe(case: Case, at: Position, out: Outputs) -> list[str]:
    """Every outcome the record has: one label per dead letter, rejection or posting."""
    labels = []
    for d in out.dead.get(at, []):
        label = f"DLQ {d.reason}"
        if case.expect.message and case.expect.message not in d.message:
            label += f" (message {d.message[:60]!r})"
        if not d.keeps(case):
            label += " (record altered)"
        labels.append(label)
    pid = _pid(case)
    if pid is not None:
        labels += [f"rejected {reason}" for reason in out.rejections.get(pid, [])]
        entries = out.entries.get(pid, [])
        if entries:
            sides = sorted(side for side, _delta in entries)
            whole = sides == ["CREDIT", "DEBIT"] and sum(d for _s, d in entries) == 0
            labels.append(POSTED if whole else f"entries {'+'.join(sides)}")
    return labels


@dataclass
class Row:
    category: str
    expected: str
    observed: Counter[str] = field(default_factory=Counter)
    count: int = 0
    wrong: int = 0


def compare(
    cases: Sequence[Case], positions: Sequence[Position], out: Outputs, order: Sequence[str]
) -> tuple[list[Row], list[str]]:
    """Rows by category (in `order`) and every output no record accounts for."""
    rows: dict[str, Row] = {name: Row(name, "") for name in order}
    for case, at in zip(cases, positions, strict=True):
        row = rows[case.category]
        row.expected = case.expect.label
        labels = observe(case, at, out)
        row.count += 1
        row.observed[" + ".join(labels) or "nothing (lost)"] += 1
        row.wrong += labels != [case.expect.label]
    sent = set(positions)
    ids = {_pid(c) for c in cases}
    stray = [
        f"DLQ record for {at}, which the test did not send" for at in out.dead if at not in sent
    ]
    stray += [f"rejection of unknown payment id {p[:60]!r}" for p in out.rejections if p not in ids]
    stray += [f"entries of unknown payment id {p[:60]!r}" for p in out.entries if p not in ids]
    if out.dead_elsewhere:
        stray.append(f"{out.dead_elsewhere} dead letter(s) of other topics")
    return list(rows.values()), stray


def table(rows: Sequence[Row], stray: Sequence[str], notes: Sequence[str]) -> str:
    width = max(len(r.category) for r in rows)
    head = f"{'category':<{width}}  {'count':>6}  {'expected':<30}  observed"
    lines = [head, "-" * (len(head) + 30)]
    for r in rows:
        seen = ", ".join(f"{label} x{n}" for label, n in r.observed.most_common(4))
        flag = "" if not r.wrong else f"   <-- {r.wrong} WRONG"
        lines.append(f"{r.category:<{width}}  {r.count:>6,}  {r.expected:<30}  {seen}{flag}")
    malformed = sum(r.count for r in rows if r.expected != POSTED)
    wrong = sum(r.wrong for r in rows)
    lines.append("-" * (len(head) + 30))
    lines.append(
        f"{sum(r.count for r in rows):,} records ({malformed:,} malformed) in {len(rows)} "
        f"categories; {wrong:,} with a wrong outcome; {len(stray)} stray output(s)"
    )
    lines += [f"stray: {s}" for s in stray[:20]]
    lines += notes
    return "\n".join(lines)
