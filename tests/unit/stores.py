"""Stores ready for a unit test: bound to a temporary folder, partitions restored."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from eos.engine.state import StateStore


def make_ready(
    store: StateStore, partitions: Iterable[int], directory: Path | None = None
) -> StateStore:
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="eos-test-store-"))
        atexit.register(shutil.rmtree, directory, True)
    store.bind(directory, {"cluster": "test"})
    for p in partitions:
        store.open(p)
        store.mark_ready(p)
    return store
