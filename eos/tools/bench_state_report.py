"""The pure parts of `eos bench state`: what a processor's log says about restoring, when
probes show it processing, rates from offset samples, the figures, the bars and the table.

Nothing here touches Kafka or a process, so all of it is unit-tested.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eos.kafka.offsets import TP

__all__ = [
    "BARS",
    "FIGURES",
    "Bar",
    "RestoreSummary",
    "Restored",
    "backlog_rate",
    "bars",
    "caught_up",
    "full_restore",
    "parse_restore_line",
    "processing_moments",
    "render",
    "status_mb",
    "summarize_restore",
]

# The keys state.json always has (a figure may be null where it could not be taken).
FIGURES = (
    "date",
    "host",
    "cores",
    "partitions",
    "keys",
    "payments",
    "full_restore_seconds",
    "full_restore_records_per_s",
    "restart_resume_seconds",
    "sigkill_resume_seconds",
    "peak_rss_mb",
    "ledger_payments_per_s_empty",
    "ledger_payments_per_s_10m",  # with the `keys` present (10 M by default)
    "ledger_payments_per_s_empty_rounds",
    "ledger_payments_per_s_10m_rounds",
    "throughput_ratio",
    "bars",
)

# A count before "records", possibly with a word or two between ("2000000 changelog records").
_RECORDS = re.compile(r"(?<![\w.])(\d[\d,_]*)\s+(?:[A-Za-z-]+\s+){0,2}records?\b", re.I)
_DURATION = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*(ms|s|secs?|seconds?)\b", re.I)
_STORE = re.compile(r"\bstore\s+['\"]?([\w.-]+)", re.I)
# The `eos run` log format starts with asctime: "2025-01-31 12:00:00,123".
_STAMP = re.compile(r"^\s*(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[,.]\d+)?)")


@dataclass(frozen=True)
class Restored:
    """One "restored ..." log line: a store (or one of its partitions) rebuilt."""

    store: str | None
    records: int
    seconds: float
    at: float | None  # the line's own timestamp (epoch seconds), when it has one


@dataclass(frozen=True)
class RestoreSummary:
    records: int
    seconds: float  # wall time the restores covered
    lines: int


def parse_restore_line(line: str) -> Restored | None:
    """A log line that says a store was restored, with how many records and how long;
    None for any other line. Tolerant of wording: the line must say "restored" and
    carry a count before "records" and a duration (s or ms)."""
    if "restored" not in line.lower():
        return None
    records = _RECORDS.search(line)
    durations = _DURATION.findall(line)
    if records is None or not durations:
        return None
    value, unit = durations[-1]
    seconds = float(value) / (1000 if unit.lower() == "ms" else 1)
    store = _STORE.search(line)
    return Restored(
        store.group(1) if store else None,
        int(re.sub(r"[,_]", "", records.group(1))),
        seconds,
        _timestamp(line),
    )


def _timestamp(line: str) -> float | None:
    found = _STAMP.match(line)
    if found is None:
        return None
    try:
        return datetime.fromisoformat(found.group(1).replace(",", ".")).timestamp()
    except ValueError:
        return None


def summarize_restore(lines: Iterable[str]) -> RestoreSummary | None:
    """Records restored in all, and the wall time the restores took. With timestamps,
    the span from the earliest start (stamp minus duration) to the latest end, so that
    restores run one after another or side by side both count once; without, the sum."""
    parsed = [r for r in map(parse_restore_line, lines) if r is not None]
    if not parsed:
        return None
    records = sum(r.records for r in parsed)
    stamps = [(r.at, r.seconds) for r in parsed if r.at is not None]
    if len(stamps) == len(parsed):
        start = min(at - s for at, s in stamps)
        end = max(at for at, _ in stamps)
        seconds = max(end - start, max(r.seconds for r in parsed))
    else:
        seconds = sum(r.seconds for r in parsed)
    return RestoreSummary(records, round(seconds, 3), len(parsed))


_COMPACT = re.compile(r"stores: .* (\d+) MB to compact, (\d+) compaction")


def compaction_pending_mb(lines: Sequence[str]) -> int | None:
    """The compaction still to do in the processor's last progress line that says: the
    bytes RocksDB estimates, or 1 while a compaction runs; None when no line says."""
    for line in reversed(lines):
        match = _COMPACT.search(line)
        if match:
            pending, running = int(match.group(1)), int(match.group(2))
            return pending or min(running, 1)
    return None


def status_mb(status: str, field: str = "VmHWM") -> float | None:
    """A memory figure (VmHWM: the peak resident set; VmRSS: the current one) in MB from
    the text of /proc/<pid>/status."""
    found = re.search(rf"^{field}:\s*(\d+)\s*kB", status, re.M)
    return None if found is None else round(int(found.group(1)) / 1024, 1)


def caught_up(
    committed: Mapping[TP, int],
    written: Mapping[TP, int],
    stable: Mapping[TP, int],
    marked: Iterable[TP] = (),
) -> bool:
    """Every partition's committed offset at its high watermark (`written`). A `marked`
    partition is written only in transactions: it must have none open or awaiting its
    marker (last stable offset == high watermark), and its end may lie one past the
    committed offset, at the last transaction's commit marker. (The group's offsets can
    show a transaction committed before its marker reaches the other partitions: the
    last stable offset alone would then hide records not yet processed.)"""
    slack = set(marked)
    for tp, end in written.items():
        if tp in slack and stable.get(tp, -1) != end:
            return False
        if max(committed.get(tp, 0), 0) < end - (1 if tp in slack else 0):
            return False
    return True


def only_markers_maybe(
    committed: Mapping[TP, int],
    written: Mapping[TP, int],
    stable: Mapping[TP, int],
    marked: Iterable[TP],
) -> dict[TP, int] | None:
    """When every partition not `caught_up` is a `marked` one with no transaction open,
    those partitions and their committed offsets: what lies past them may be no records
    at all, only the markers of several producers' last transactions interleaved (records
    A, B, then markers A, B) or an aborted transaction, which nobody reads or commits
    past. A read from the committed offset tells (eos.kafka.lag.without_records). Empty
    when every partition is `caught_up`; None when some partition is surely behind."""
    slack = set(marked)
    doubt: dict[TP, int] = {}
    for tp, end in written.items():
        if caught_up(committed, {tp: end}, stable, slack):
            continue
        if tp not in slack or stable.get(tp, -1) != end:
            return None
        doubt[tp] = max(committed.get(tp, 0), 0)
    return doubt


def processing_moments(
    sent: Mapping[str, tuple[int, float]],
    seen: Mapping[str, float],
    since: float,
    partitions: int,
) -> tuple[float, float] | None:
    """When the first partition and when every partition answered a probe sent at or
    after `since` (sent: probe id -> (partition, time); seen: probe id -> time its
    answer was read). None until every partition has answered one."""
    first: dict[int, float] = {}
    for probe, at in seen.items():
        where = sent.get(probe)
        if where is None or where[1] < since:
            continue
        partition = where[0]
        first[partition] = min(at, first.get(partition, at))
    if len(first) < partitions:
        return None
    return min(first.values()), max(first.values())


def backlog_rate(samples: Sequence[tuple[float, int]], count: int, done_at: float) -> float:
    """`count` per second, from the last sample that still showed nothing processed
    (work began after it) to `done_at`. Samples are (time, records committed since
    the start); with none at 0, from the first sample."""
    if not samples or count <= 0:
        raise ValueError("no backlog to measure")
    idle = [t for t, done in samples if done <= 0]
    start = idle[-1] if idle else samples[0][0]
    return round(count / max(done_at - start, 1e-3), 1)


def full_restore(
    keys: int, spawn_to_processing: float, summary: RestoreSummary | None
) -> dict[str, Any]:
    """The full-restore figures: the processor's own restore lines when it logged them
    (records and seconds they cover), else keys over spawn-to-processing."""
    if summary is not None and summary.records > 0 and summary.seconds > 0:
        records, seconds, source = summary.records, summary.seconds, "log"
    else:
        records, seconds, source = keys, spawn_to_processing, "probe"
    return {
        "full_restore_seconds": round(seconds, 3),
        "full_restore_records": records,
        "full_restore_records_per_s": round(records / max(seconds, 1e-3), 1),
        "full_restore_source": source,
        "full_spawn_to_processing_seconds": round(spawn_to_processing, 3),
    }


_COMPARE = {"<=": operator.le, ">=": operator.ge, "<": operator.lt}


@dataclass(frozen=True)
class Bar:
    figure: str
    op: str  # a key of _COMPARE
    limit: float
    text: str  # how the table shows it

    def met(self, result: Mapping[str, Any]) -> bool | None:
        value = result.get(self.figure)
        return None if value is None else bool(_COMPARE[self.op](value, self.limit))


BARS = (
    Bar("restart_resume_seconds", "<=", 5.0, "<= 5 s"),
    Bar("full_restore_records_per_s", ">=", 150_000, ">= 150,000/s"),
    Bar("peak_rss_mb", "<", 600, "< 600 MB"),
    # Throughput with the keys present within 10 % of the empty store's.
    Bar("throughput_ratio", ">=", 0.9, ">= 0.90 x empty"),
)


def bars(result: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each bar: what it asks and whether the figure meets it (None: no figure)."""
    return {b.figure: {"bar": b.text, "met": b.met(result)} for b in BARS}


_ROWS = (
    ("keys in the dedup store", "keys", "{:,}"),
    ("fill (records/s)", "fill_records_per_s", "{:,.0f}"),
    ("full restore (s)", "full_restore_seconds", "{:.1f}"),
    ("full restore (records/s)", "full_restore_records_per_s", "{:,.0f}"),
    ("  spawn to processing (s)", "full_spawn_to_processing_seconds", "{:.1f}"),
    ("restart after SIGTERM (s)", "restart_resume_seconds", "{:.2f}"),
    ("restart after SIGKILL (s)", "sigkill_resume_seconds", "{:.2f}"),
    ("peak RSS (MB)", "peak_rss_mb", "{:,.0f}"),
    ("payments/s, empty store (best)", "ledger_payments_per_s_empty", "{:,.0f}"),
    ("  each round", "ledger_payments_per_s_empty_rounds", "{}"),
    ("payments/s, keys present (best)", "ledger_payments_per_s_10m", "{:,.0f}"),
    ("  each round", "ledger_payments_per_s_10m_rounds", "{}"),
    ("  ratio", "throughput_ratio", "{:.3f}"),
)


def render(result: Mapping[str, Any]) -> str:
    """The table: each figure, its bar and whether it is met."""
    verdicts = result.get("bars", {})
    lines = [f"  {'figure':<32} {'value':>14}  {'bar':<18} result"]
    for label, key, fmt in _ROWS:
        value = result.get(key)
        if isinstance(value, list):
            value = ", ".join(f"{v:,.0f}" for v in value)
        shown = "-" if value is None else fmt.format(value)
        verdict = verdicts.get(key)
        bar, met = ("", "") if verdict is None else (verdict["bar"], verdict["met"])
        word = {True: "pass", False: "FAIL", None: "n/a", "": ""}[met]
        lines.append(f"  {label:<32} {shown:>14}  {bar:<18} {word}".rstrip())
    return "\n".join(lines)
