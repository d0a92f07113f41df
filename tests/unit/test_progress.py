"""Progress of long operations: a bar on a terminal, periodic lines elsewhere."""

from __future__ import annotations

import io
import re
import time

from eos.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_without_a_terminal_a_line_with_rate_and_eta_every_interval() -> None:
    out = io.StringIO()
    progress = Progress("produce payments", 1_000, out, every=0.05)
    progress.update(100)  # too soon after the start: nothing
    time.sleep(0.06)
    progress.update(250)
    progress.done(1_000)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("  produce payments: 250/1,000 (25%) ")
    assert "/s, ETA " in lines[0]
    assert lines[1].startswith("  produce payments: 1,000 in ")
    assert "\x1b" not in out.getvalue()


def test_on_a_terminal_a_bar_then_only_the_summary_line_stays() -> None:
    out = _Terminal()
    progress = Progress("fill", 1_000, out)
    progress.update(400)
    time.sleep(0.2)  # a refresh of the bar
    progress.done(1_000)
    shown = out.getvalue()
    assert "fill" in shown and "400/1000" in shown and "ETA" in shown
    # the bar erased (cursor up, clear line), then the summary
    last = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown.splitlines()[-1])
    assert last.startswith("  fill: 1,000 in ")


def test_an_interrupted_operation_takes_its_bar_down_without_a_summary() -> None:
    out = _Terminal()
    progress = Progress("produce payments", 1_000, out)
    progress.update(10)
    time.sleep(0.2)
    progress.close()
    shown = out.getvalue()
    assert "10/1000" in shown and " in " not in shown
