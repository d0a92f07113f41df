"""What `verify` found: summary counts and every violation, named by kind."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from eos.ledger.verify.kinds import KINDS

__all__ = ["EXAMPLES", "Report", "Violation"]

EXAMPLES = 10


class Violation(NamedTuple):
    kind: str
    message: str


@dataclass
class Report:
    """What `verify` found: summary counts and every violation, named.

    `render()` prints at most `examples` violations of each kind; all are counted.
    """

    examples: int = EXAMPLES
    summary: dict[str, int] = field(default_factory=dict)
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    named: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, kind: str, message: str) -> None:
        self.named[kind].append(message)

    @property
    def violations(self) -> list[Violation]:
        return [Violation(kind, m) for kind in self.kinds() for m in self.named[kind]]

    @property
    def violation_count(self) -> int:
        return sum(len(messages) for messages in self.named.values())

    @property
    def counts(self) -> Counter[str]:
        """Violations per kind."""
        return Counter({kind: len(self.named[kind]) for kind in self.kinds()})

    @property
    def ok(self) -> bool:
        return self.violation_count == 0

    @property
    def posted(self) -> int:
        return self.summary.get("posted", 0)

    @property
    def rejected(self) -> int:
        return self.summary.get("rejected", 0)

    @property
    def duplicates(self) -> int:
        return self.summary.get("duplicates dropped", 0)

    @property
    def dead_lettered(self) -> int:
        return self.summary.get("dead-lettered", 0)

    def kinds(self) -> list[str]:
        """Kinds with at least one violation, in report order."""
        present = [k for k, messages in self.named.items() if messages]
        return [k for k in KINDS if k in present] + sorted(set(present) - set(KINDS))

    def render(self) -> str:
        lines = ["ledger verification", *self._summary_lines()]
        if self.ok:
            lines.append("verification PASSED")
            return "\n".join(lines)
        lines.append(f"verification FAILED: {self.violation_count} violation(s)")
        for kind in self.kinds():
            messages = self.named[kind]
            lines.append(f"  {kind}: {len(messages)}")
            lines.extend(f"    - {message}" for message in messages[: self.examples])
            if len(messages) > self.examples:
                lines.append(f"    ... and {len(messages) - self.examples} more")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data: the summary, rejections by reason, every violation's
        message by kind (not only the first `examples`), the notes, and the verdict."""
        return {
            "passed": self.ok,
            "summary": dict(self.summary),
            "rejected_by_reason": dict(sorted(self.rejected_by_reason.items())),
            "violation_count": self.violation_count,
            "violations": {kind: list(self.named[kind]) for kind in self.kinds()},
            "notes": list(self.notes),
            "seconds": round(self.seconds, 3),
        }

    def to_json(self) -> str:
        """`to_dict()` as one JSON document."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def _summary_lines(self) -> list[str]:
        lines = []
        width = max((len(k) for k in (*self.summary, *self.rejected_by_reason)), default=0) + 4
        for name, value in self.summary.items():
            lines.append(f"  {name:<{width}} {value:>12,}")
            if name == "rejected":
                for reason, count in sorted(self.rejected_by_reason.items()):
                    lines.append(f"    {reason:<{width - 2}} {count:>12,}")
        lines.extend(f"  note: {note}" for note in self.notes)
        if self.seconds:
            lines.append(f"  read and checked in {self.seconds:.1f}s")
        return lines
