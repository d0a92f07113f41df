"""`eos bench`'s figures: the median of the rounds with its spread, and the bars judged
on the medians."""

from __future__ import annotations

import importlib

import pytest

from eos.errors import RunFailed
from eos.tools.bench import MODES, BenchOptions, bars, summarize
from eos.tools.bench_load import latency_figures


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


def test_latency_leaves_the_warm_up_out_and_shows_its_worst() -> None:
    seen = {n: 10.0 + n % 100 for n in range(1_000)}
    seen.update({n: 900.0 - n for n in range(50)})  # a processor's first batch
    lat = latency_figures(seen, warmup=100)
    assert lat.samples == 900
    assert (lat.p50, lat.p99) == (60.0, 109.0)
    assert lat.warmup_max == 900.0
    counted = latency_figures(seen, warmup=0)
    assert counted.p99 > 800 and counted.warmup_max is None


def test_a_latency_phase_with_nothing_past_the_warm_up_fails() -> None:
    with pytest.raises(RunFailed, match="warm-up"):
        latency_figures({0: 5.0}, warmup=1)
