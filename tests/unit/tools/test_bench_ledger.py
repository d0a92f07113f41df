"""eos bench ledger's rows and bars, from given rates."""

from __future__ import annotations

from eos.tools.bench_ledger import _counts, bars, summarize


def test_a_row_holds_the_median_and_the_spread() -> None:
    row = summarize(2, 100_000, [20_000.0, 25_000.0, 10_000.0])
    assert row["processes"] == 2
    assert row["payments"] == 100_000
    assert row["payments_per_s"] == 20_000.0
    assert (row["payments_per_s_min"], row["payments_per_s_max"]) == (10_000.0, 25_000.0)
    assert row["seconds"] == 5.0  # the median run's payments over its rate
    assert row["rounds"] == 3


def test_one_process_is_always_run_and_n_only_when_more() -> None:
    assert _counts(1) == [1]
    assert _counts(4) == [1, 4]


def test_the_bars_say_met_or_not_with_their_figures() -> None:
    rows = [summarize(1, 10, [30_000.0]), summarize(2, 10, [41_000.0])]
    assert bars(rows) == [
        "1 process (bar >= 30,000 payments/s): 30,000 (met)",
        "2 processes over 1 (bar >= +40%): +36.7% (NOT met)",
    ]
    rows = [summarize(1, 10, [10_000.0]), summarize(2, 10, [14_000.0])]
    assert bars(rows) == [
        "1 process (bar >= 30,000 payments/s): 10,000 (NOT met)",
        "2 processes over 1 (bar >= +40%): +40.0% (met)",
    ]
