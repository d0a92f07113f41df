"""`eos bench`'s record of runs: a history line per run, and a PNG of the latest run
(throughput and latency per mode) beside its JSON, with the history's throughput so a
run can be compared with the ones before it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["append_history", "compare", "draw", "read_history"]

# The runs the history panel shows: enough to see a trend, few enough to read.
SHOWN = 20


def _commit() -> str | None:
    """The checkout's commit, when the bench runs from one (a figure names its code)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def read_history(path: Path) -> list[dict[str, Any]]:
    """The runs recorded in `path` (one JSON object a line), oldest first; a line that
    does not parse (a run killed mid-write) is skipped."""
    if not path.exists():
        return []
    runs = []
    for line in path.read_text().splitlines():
        try:
            run = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(run, dict) and isinstance(run.get("results"), list):
            runs.append(run)
    return runs


def append_history(path: Path, results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Records this run at the end of `path`; returns the entry."""
    entry = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "results": list(results),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torn = path.exists() and not path.read_bytes().endswith(b"\n") and path.stat().st_size > 0
    with path.open("a") as f:
        # after a run killed mid-write, the torn line stays a line of its own
        f.write(("\n" if torn else "") + json.dumps(entry) + "\n")
    return entry


def _by_mode(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(row["mode"]): row for row in run["results"] if "mode" in row}


def compare(history: Sequence[dict[str, Any]]) -> list[str]:
    """Lines comparing the last run with the one before it, per mode."""
    if len(history) < 2:
        return []
    before, now = _by_mode(history[-2]), _by_mode(history[-1])
    lines = []
    for mode, row in now.items():
        old = before.get(mode)
        if not old or not old.get("records_per_s"):
            continue
        change = row["records_per_s"] / old["records_per_s"] - 1
        lines.append(
            f"{mode}: {row['records_per_s']:,.0f} records/s, {change:+.1%} against the run "
            f"of {history[-2].get('at', '?')} ({old['records_per_s']:,.0f}/s); p99 "
            f"{row.get('p99_ms', '?')} ms (was {old.get('p99_ms', '?')})"
        )
    return lines


def draw(history: Sequence[dict[str, Any]], png: Path) -> Path:
    """The latest run's throughput and latency per mode, and the throughput of the last
    SHOWN runs, as a PNG at `png`."""
    import matplotlib

    matplotlib.use("Agg")  # no display: a file only
    import matplotlib.pyplot as plt

    latest = history[-1]
    rows = list(latest["results"])
    modes = [str(r["mode"]) for r in rows]
    fig, (thr, lat, hist) = plt.subplots(1, 3, figsize=(15, 4.8))
    title = f"eos bench, {latest.get('at', '')}"
    if latest.get("commit"):
        title += f", commit {latest['commit']}"
    fig.suptitle(title)

    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#7f7f7f"]
    bars = thr.bar(modes, [r["records_per_s"] for r in rows], color=colors[: len(modes)])
    thr.bar_label(bars, fmt="{:,.0f}")
    thr.set_title("throughput (records/s)")
    thr.set_ylabel("records/s")

    width = 0.35
    xs = range(len(modes))
    # modes without a latency phase (copy, ceiling) show no bar
    p50s = [r.get("p50_ms") or 0 for r in rows]
    p99s = [r.get("p99_ms") or 0 for r in rows]
    p50 = lat.bar([x - width / 2 for x in xs], p50s, width, label="p50")
    p99 = lat.bar([x + width / 2 for x in xs], p99s, width, label="p99")
    lat.bar_label(p50, fmt="{:,.0f}")
    lat.bar_label(p99, fmt="{:,.0f}")
    lat.set_xticks(list(xs), modes)
    lat.set_title("end-to-end latency (ms)")
    lat.set_ylabel("ms")
    lat.legend()

    shown = list(history[-SHOWN:])
    rows_by_run = [_by_mode(run) for run in shown]
    for mode in modes:
        points = [
            (i, rows[mode]["records_per_s"]) for i, rows in enumerate(rows_by_run) if mode in rows
        ]
        hist.plot([i for i, _ in points], [v for _, v in points], marker="o", label=mode)
    labels = [f"{str(run.get('at', ''))[:10]}\n{run.get('commit') or ''}" for run in shown]
    hist.set_xticks(range(len(shown)), labels, fontsize=7, rotation=45)
    hist.set_title(f"throughput, last {len(shown)} run(s)")
    hist.set_ylabel("records/s")
    hist.set_ylim(bottom=0)
    hist.legend(loc="lower right")

    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png
