"""Progress of long operations: count, rate and ETA.

On a terminal, a progress bar (rich) redrawn in place; elsewhere (a CI log, a pipe), a
line every few seconds, since a redrawn bar would only flood a log with control codes.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Bar", "Progress"]


class Bar:
    """A rich progress bar on `stream` (a terminal): what, bar, done/total, share, rate
    and ETA. Gone when closed, so that the summary line after it stands alone."""

    def __init__(self, what: str, total: int, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        self._rich = RichProgress(
            TextColumn("  {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(file=stream),
            transient=True,
        )
        self._task = self._rich.add_task(what, total=total, rate="")
        self._start = time.monotonic()
        self._rich.start()

    def update(self, done: int, total: int | None = None) -> None:
        rate = done / max(time.monotonic() - self._start, 1e-9)
        self._rich.update(self._task, completed=done, total=total, rate=f"{rate:,.0f}/s")

    def close(self) -> None:
        self._rich.stop()


class Progress:
    """The progress of `total` things to do: a bar on a terminal, else a line every
    `every` seconds; `done` closes it with a summary line."""

    def __init__(
        self, what: str, total: int, stream: TextIO | None = None, every: float = 2.0
    ) -> None:
        self.what, self.total, self.every = what, total, every
        self.stream = stream or sys.stdout
        self.start = self.last = time.monotonic()
        self._bar = Bar(what, total, self.stream) if self.stream.isatty() else None

    def update(self, done: int) -> None:
        if self._bar is not None:
            self._bar.update(done)
            return
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        self._print(
            f"  {self.what}: {done:,}/{self.total:,} ({done / self.total:.0%}) "
            f"{rate:,.0f}/s, ETA {eta:.0f}s"
        )

    def close(self) -> None:
        """Takes the bar down (an interruption, an error): the caller says why."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def done(self, count: int) -> None:
        self.close()
        took = time.monotonic() - self.start
        self._print(f"  {self.what}: {count:,} in {took:.1f}s ({count / max(took, 1e-9):,.0f}/s)")

    def _print(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()
