"""`eos bench`'s figures: the median of the rounds with its spread, and the bars judged
on the medians."""

from __future__ import annotations

import importlib

from eos.tools.bench import MODES, BenchOptions, bars, summarize


def _run(rate: float) -> dict[str, float]:
    return {"seconds": 200_000 / rate, "records_per_s": rate, "cpu_us_per_record": 1e6 / rate}


def test_the_figure_is_the_median_with_min_and_max() -> None:
    row = summarize("copy", 200_000, [_run(90_000), _run(50_000), _run(100_000)], None)
    assert row["records_per_s"] == 90_000
    assert (row["records_per_s_min"], row["records_per_s_max"]) == (50_000, 100_000)
    assert row["seconds"] == 200_000 / 90_000
    assert row["p50_ms"] is None and row["p99_ms"] is None
    assert row["rounds"] == 3


def test_the_bars_read_the_medians() -> None:
    rows = {
        "exactly_once": summarize("exactly_once", 1, [_run(81_000)], (40.0, 240.0)),
        "at_least_once": summarize("at_least_once", 1, [_run(90_000)], (30.0, 200.0)),
        "copy": summarize("copy", 1, [_run(120_000)], None),
        "ceiling": summarize("ceiling", 1, [_run(200_000)], None),
    }
    lines = bars(rows, BenchOptions())
    assert "copy / ceiling (bar >= 60%): 60.0% (met)" in lines
    assert "exactly-once records/s (bar >= 80,000): 81,000 (met)" in lines
    assert "exactly-once / at-least-once (bar >= 95%): 90.0% (NOT met)" in lines
    assert "exactly-once p99 at 5,000/s (bar <= 250 ms): 240 ms (met)" in lines


def test_the_command_offers_the_modes_the_bench_runs() -> None:
    assert importlib.import_module("eos.cli.bench").MODES == MODES
