"""The progress of a long read (`eos verify ledger`): records read, rate and ETA, on
stderr so that stdout keeps only the report; a bar on a terminal, else periodic lines."""

from __future__ import annotations

import sys
from typing import TextIO

from eos.kafka.reader import ReadProgress
from eos.progress import Bar

__all__ = ["ReadProgressLine", "describe", "finished"]

# Without a terminal (a CI log), a line this often at most: every report would flood it.
LOG_EVERY = 10.0


def describe(p: ReadProgress) -> str:
    eta = "?" if p.eta is None else f"{p.eta:,.0f}s"
    return f"reading: {p.records:,} records, {p.rate:,.0f}/s, ETA {eta} ({p.fraction:.0%})"


def finished(p: ReadProgress) -> str:
    return f"read {p.records:,} records in {p.seconds:.1f}s ({p.rate:,.0f}/s)"


class ReadProgressLine:
    """Shows each ReadProgress: on a terminal a bar (records read of those known to
    remain), elsewhere a line every LOG_EVERY seconds; a summary line at the end. The
    reader reports only reads that last a while, so a quick one prints nothing."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.printed = False
        self.last = float("-inf")
        self._bar: Bar | None = None

    def __call__(self, p: ReadProgress) -> None:
        if p.done:
            if self._bar is not None:
                self._bar.close()
            if self.printed:
                self._line(finished(p))
            return
        self.printed = True
        if self.tty:
            total = p.records + max(p.remaining, 0)
            self._bar = self._bar or Bar("reading", total, self.stream)
            self._bar.update(p.records, total)
            return
        if p.seconds - self.last < LOG_EVERY:
            return
        self.last = p.seconds
        self._line(describe(p))

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
