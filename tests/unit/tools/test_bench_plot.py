"""eos bench's history and chart: every run is kept, compared with the one before it,
and drawn as a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eos.tools.bench_plot import append_history, compare, draw, read_history


def _results(eos_rate: float, alo_rate: float) -> list[dict[str, Any]]:
    return [
        {"mode": "exactly_once", "records_per_s": eos_rate, "p50_ms": 120.0, "p99_ms": 480.0},
        {"mode": "at_least_once", "records_per_s": alo_rate, "p50_ms": 20.0, "p99_ms": 90.0},
    ]


def test_runs_are_appended_and_a_torn_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    append_history(path, _results(10_000, 11_000))
    with path.open("a") as f:
        f.write('{"at": "2026-12-01T00:00:0')  # a run killed mid-write
    append_history(path, _results(12_000, 11_500))
    runs = read_history(path)
    assert [r["results"][0]["records_per_s"] for r in runs] == [10_000, 12_000]
    assert all(r["at"] for r in runs)


def test_the_last_run_is_compared_with_the_one_before(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    assert compare([]) == []
    append_history(path, _results(10_000, 11_000))
    assert compare(read_history(path)) == []
    append_history(path, _results(12_000, 11_000))
    lines = compare(read_history(path))
    assert lines[0].startswith("exactly_once: 12,000 records/s, +20.0% against the run of")
    assert "+0.0%" in lines[1]


def test_the_chart_is_a_png_with_every_run(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    for rate in (9_000, 10_000, 12_000):
        append_history(path, _results(rate, rate * 1.05))
    png = draw(read_history(path), tmp_path / "latest.png")
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1500, 480)
