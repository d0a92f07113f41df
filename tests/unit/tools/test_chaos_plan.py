"""The fault suite's bookkeeping: the schedule, the shared lag timeline, kill recoveries."""

from __future__ import annotations

import threading
import time

from eos.tools.chaos import ChaosOptions, _recoveries, _slack
from eos.tools.chaos_faults import FAULT_KINDS, Timeline, schedule


def test_schedule_spreads_every_fault_over_the_middle_of_the_load() -> None:
    counts = {"kill": 10, "pause": 2, "bounce": 3, "registry-restart": 1, "registry-block": 1}
    plan = schedule(counts, duration=200.0, seed=7)
    assert sorted(kind for _, kind in plan) == sorted(
        k for k in FAULT_KINDS for _ in range(counts[k])
    )
    times = [at for at, _ in plan]
    assert times == sorted(times)
    assert times[0] == 20.0 and times[-1] < 180.0


def test_schedule_is_reproducible_by_seed() -> None:
    counts = {"kill": 4, "bounce": 2}
    assert schedule(counts, 100.0, 1) == schedule(counts, 100.0, 1)
    assert [k for _, k in schedule(counts, 100.0, 1)] != [k for _, k in schedule(counts, 100.0, 3)]


def test_wait_back_needs_a_sample_after_the_fault_at_or_under_the_level() -> None:
    timeline, stop = Timeline(), threading.Event()
    timeline.add(1.0, 10)  # before the fault: does not count
    assert not timeline.wait_back(50, after=2.0, timeout=0.3, stop=stop)
    timeline.add(3.0, 900)
    assert not timeline.wait_back(50, after=2.0, timeout=0.3, stop=stop)
    timeline.add(4.0, 40)
    assert timeline.wait_back(50, after=2.0, timeout=0.3, stop=stop)
    assert timeline.latest() == 40


def test_wait_back_returns_at_once_when_stopped() -> None:
    timeline, stop = Timeline(), threading.Event()
    stop.set()
    started = time.monotonic()
    assert not timeline.wait_back(0, after=0.0, timeout=30.0, stop=stop)
    assert time.monotonic() - started < 1.0


def test_recovery_is_time_from_kill_until_lag_back_to_its_level_plus_slack() -> None:
    samples = [(0.0, 100), (10.0, 120), (11.0, 5000), (15.0, 3000), (18.5, 200), (30.0, 0)]
    # killed at 10.2: level 120 + slack 100; the first sample under 220 after is at 18.5
    assert _recoveries(_timeline(samples), [10.2], slack=100) == [18.5 - 10.2]


def test_a_kill_the_lag_never_recovers_from_is_infinite() -> None:
    samples = [(0.0, 0), (5.0, 9000), (9.0, 9000)]
    assert _recoveries(_timeline(samples), [1.0], slack=10) == [float("inf")]


def test_slack_is_a_quarter_second_of_load_or_markers() -> None:
    assert _slack(ChaosOptions(rate=5000, partitions=6)) == 1250
    assert _slack(ChaosOptions(rate=10, partitions=6)) == 24


def _timeline(samples: list[tuple[float, int]]) -> Timeline:
    timeline = Timeline()
    for at, behind in samples:
        timeline.add(at, behind)
    return timeline
