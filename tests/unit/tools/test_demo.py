"""When the demo, eos chaos and the ledger tests call a group caught up."""

from __future__ import annotations

import subprocess
from typing import cast

import pytest

from eos.config import EngineSettings
from eos.errors import RunFailed
from eos.kafka import lag
from eos.ledger.settings import LedgerSettings
from eos.tools import demo
from eos.tools.demo import wait_caught_up


class _Offsets:
    def __init__(self, _config: object) -> None:
        pass

    def __enter__(self) -> _Offsets:
        return self

    def __exit__(self, *_exc: object) -> None:
        pass

    def partitions(self, topics: list[str]) -> list[tuple[str, int]]:
        return [(t, p) for t in topics for p in range(6)]


class _Running:
    returncode = None

    def poll(self) -> int | None:
        return None


def test_trailing_markers_of_three_processors_count_as_caught_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 12 partitions; each credits partition ends with the markers of the three
    # processors' last transactions, after the last record they processed.
    monkeypatch.setattr(demo, "Offsets", _Offsets)
    snapshot = [(10, 13 if p < 6 else 10) for p in range(12)]
    monkeypatch.setattr(demo, "work_lag", lambda *_a: (18, snapshot))
    procs = cast(dict[str, subprocess.Popen[bytes]], {f"p{i}": _Running() for i in range(3)})
    wait_caught_up(EngineSettings(), LedgerSettings(), procs, timeout=10)


def test_a_lag_beyond_the_markers_is_not_caught_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "Offsets", _Offsets)
    monkeypatch.setattr(demo, "work_lag", lambda *_a: (37, [(0, 37)]))
    procs = cast(dict[str, subprocess.Popen[bytes]], {f"p{i}": _Running() for i in range(3)})
    with pytest.raises(RunFailed, match="timed out"):
        wait_caught_up(EngineSettings(), LedgerSettings(), procs, timeout=4)


class _Ends:
    """Committed offsets and last stable offsets of two partitions."""

    def __init__(
        self, committed: dict[tuple[str, int], int], ends: dict[tuple[str, int], int]
    ) -> None:
        self._committed, self._ends = committed, ends

    def committed(
        self, _group: str, _parts: object, stable: bool = True
    ) -> dict[tuple[str, int], int]:
        return self._committed

    def last_stable(self, _parts: object) -> dict[tuple[str, int], int]:
        return self._ends


def test_lag_made_of_aborted_records_only_is_no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    # A zombie's aborted writes trail partition 0 (200 offsets, no committed record);
    # partition 1 has 50 records still to process.
    parts = [("credits", 0), ("credits", 1)]
    ends = _Ends({parts[0]: 100, parts[1]: 100}, {parts[0]: 300, parts[1]: 150})
    asked: list[dict[tuple[str, int], int]] = []

    def without_records(
        _config: object, start: dict[tuple[str, int], int], _ends: object
    ) -> set[tuple[str, int]]:
        asked.append(start)
        return {parts[0]}

    monkeypatch.setattr(lag, "without_records", without_records)
    behind, _snapshot = demo.work_lag(ends, {}, "g", parts)  # type: ignore[arg-type]
    assert behind == 50
    assert asked == [{parts[0]: 100, parts[1]: 100}]
