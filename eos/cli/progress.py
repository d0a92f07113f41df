"""The progress line of a long read (`eos verify ledger`): records read, rate and ETA,
on stderr so that stdout keeps only the report."""

from __future__ import annotations

import sys
from typing import TextIO

from eos.kafka.reader import ReadProgress

__all__ = ["ReadProgressLine", "describe", "finished"]

# Without a terminal (a CI log), a line this often at most: every report would flood it.
LOG_EVERY = 10.0


def describe(p: ReadProgress) -> str:
    eta = "?" if p.eta is None else f"{p.eta:,.0f}s"
    return f"reading: {p.records:,} records, {p.rate:,.0f}/s, ETA {eta} ({p.fraction:.0%})"


def finished(p: ReadProgress) -> str:
    return f"read {p.records:,} records in {p.seconds:.1f}s ({p.rate:,.0f}/s)"


class ReadProgressLine:
    """Prints each ReadProgress: on a terminal one line redrawn in place, elsewhere a
    line every LOG_EVERY seconds. The reader reports only reads that last a while, so a
    quick one prints nothing."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.printed = False
        self.last = float("-inf")

    def __call__(self, p: ReadProgress) -> None:
        if p.done:
            if self.printed:
                self._show(finished(p), final=True)
            return
        if not self.tty and p.seconds - self.last < LOG_EVERY:
            return
        self.last = p.seconds
        self._show(describe(p), final=False)

    def _show(self, text: str, final: bool) -> None:
        if self.tty:
            # Back to the line's start, and clear what a longer line left behind.
            text = f"\r{text}\x1b[K" + ("\n" if final else "")
        else:
            text += "\n"
        self.stream.write(text)
        self.stream.flush()
        self.printed = True
