"""The restorer waits out a cluster that cannot answer; it stops only on no progress."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from eos.engine.restore import Restorer, RestoreStalled
from eos.engine.state import StateStore

TP = tuple[str, int]


class Unanswered:
    """Offsets of a cluster whose leaders are away (a broker bounce): every ask times out
    the way the admin client's futures do."""

    def __init__(self) -> None:
        self.asked = 0

    def log_starts(self, partitions: Iterable[TP]) -> dict[TP, int]:
        self.asked += 1
        raise TimeoutError

    high_watermarks = log_starts

    def close(self) -> None:
        pass


def test_offsets_that_time_out_are_asked_again_then_a_stall_is_reported(
    tmp_path: Path,
) -> None:
    store = StateStore("s", "s.changelog")
    store.bind(tmp_path, {"cluster": "test"})
    now = [0.0]
    restorer = Restorer([store], {}, stall_s=60, clock=lambda: now[0])
    offsets = Unanswered()
    restorer._offsets = offsets  # type: ignore[assignment]
    restorer.add([0])
    assert restorer.step(0.0) == set()  # a bounce: no exception, asked again next step
    now[0] = 30.0
    assert restorer.step(0.0) == set()
    assert offsets.asked == 2 and restorer.busy
    now[0] = 61.0
    with pytest.raises(RestoreStalled, match="no progress for 60s"):
        restorer.step(0.0)
