"""A hard deadline for work that must not hang the process."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator

from eos.engine.stats import EXIT_FATAL

__all__ = ["exit_if_overdue"]

log = logging.getLogger("eos.processor")


@contextlib.contextmanager
def exit_if_overdue(seconds: float, what: str) -> Iterator[None]:
    """Run the block; if it takes longer than `seconds`, log why and exit the process at
    once (exit 1). For steps whose hang would keep partitions from every other member:
    a process that is gone gives them up, one that hangs does not."""

    def overdue() -> None:
        log.error("%s took longer than %.0fs; exiting hard", what, seconds)
        os._exit(EXIT_FATAL)

    timer = threading.Timer(seconds, overdue)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
