"""When the demo, eos chaos and the ledger tests call a group caught up."""

from __future__ import annotations

import subprocess
from typing import cast

import pytest

from eos.config import EngineSettings
from eos.errors import RunFailed
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
    monkeypatch.setattr(demo, "_lag", lambda *_a: (18, snapshot))
    procs = cast(dict[str, subprocess.Popen[bytes]], {f"p{i}": _Running() for i in range(3)})
    wait_caught_up(EngineSettings(), LedgerSettings(), procs, timeout=10)


def test_a_lag_beyond_the_markers_is_not_caught_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "Offsets", _Offsets)
    monkeypatch.setattr(demo, "_lag", lambda *_a: (37, [(0, 37)]))
    procs = cast(dict[str, subprocess.Popen[bytes]], {f"p{i}": _Running() for i in range(3)})
    with pytest.raises(RunFailed, match="timed out"):
        wait_caught_up(EngineSettings(), LedgerSettings(), procs, timeout=4)
