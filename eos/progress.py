"""Progress lines for long operations: count, rate and ETA."""

from __future__ import annotations

import time


class Progress:
    """A line every 2 seconds: count, rate and ETA."""

    def __init__(self, what: str, total: int) -> None:
        self.what, self.total = what, total
        self.start = self.last = time.monotonic()

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last < 2:
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        print(
            f"  {self.what}: {done:,}/{self.total:,} ({done / self.total:.0%}) "
            f"{rate:,.0f}/s, ETA {eta:.0f}s",
            flush=True,
        )

    def done(self, count: int) -> None:
        took = time.monotonic() - self.start
        print(
            f"  {self.what}: {count:,} in {took:.1f}s ({count / max(took, 1e-9):,.0f}/s)",
            flush=True,
        )
