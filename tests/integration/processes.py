"""Processors run as child processes for the fault tests: their output, their signals
(eos.testing.apps, the kit's), and the end offsets that show whether one is inside a
transaction."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from typing import Any

from confluent_kafka import TopicPartition

from eos.kafka.offsets import Offsets, open_transactions, total
from eos.testing.apps import AppProcess, wait_until

__all__ = ["EndOffsets", "Spawned", "wait_until"]


class Spawned(AppProcess):
    """A child process started by a test, with its output piped: the kit's AppProcess
    watching it, and what the project's own fault tests read from its log."""

    proc: subprocess.Popen[Any]  # attached at once: never None

    def __init__(self, name: str, proc: subprocess.Popen[Any]) -> None:
        super().__init__("", {}, name)
        self.attach(proc)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM: finish the batch in flight, commit it, leave the group."""
        return self.terminate(timeout)

    def processed(self) -> int:
        """The records this process committed, from its last progress report (one is
        printed on every exit but SIGKILL)."""
        totals = self.stats()
        assert "records" in totals, self.tail()
        return totals["records"]

    def partitions(self, event: str, topic: str, skip: int = 0) -> set[int]:
        """Partitions of `topic` named by this process's "assigned"/"revoked" lines."""
        pattern = re.compile(re.escape(topic) + r"\[(\d+)\]")
        lines = self.logged(f"eos.processor: {event} ")[skip:]
        return {int(p) for line in lines for p in pattern.findall(line)}


class EndOffsets:
    """Partitions' end offsets, committed (the last stable offset) or not (the high
    watermark). Cheap to poll, and never held up by an open transaction."""

    def __init__(self, config: dict[str, Any], partitions: Sequence[TopicPartition]) -> None:
        self._offsets = Offsets(config, timeout=5)
        self._tps = [(tp.topic, tp.partition) for tp in partitions]

    def stable(self) -> int:
        return total(self._offsets.last_stable(self._tps))

    def open_transaction(self) -> bool:
        """Records written past the last stable offset: a transaction is open (only the
        processors write to these partitions)."""
        stable = self._offsets.last_stable(self._tps)
        return bool(open_transactions(stable, self._offsets.high_watermarks(self._tps)))
