"""Processors run as child processes for the fault tests: their output, their signals,
and the end offsets that show whether one is inside a transaction."""

from __future__ import annotations

import random
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import TopicPartition

from eos.kafka.offsets import Offsets, open_transactions, total


class Spawned:
    """A child process with its output drained by a thread (a full pipe would block it)."""

    def __init__(self, name: str, proc: subprocess.Popen[Any]) -> None:
        self.name = name
        self.proc = proc
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
            self.lines.append(text.rstrip("\n"))

    def logged(self, text: str) -> list[str]:
        return [line for line in list(self.lines) if text in line]

    def tail(self, n: int = 40) -> str:
        return f"--- {self.name} (last {n} lines) ---\n" + "\n".join(self.lines[-n:])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} still running after {timeout}s\n{self.tail()}"
            ) from None
        self._reader.join(5)
        return code

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def kill(self) -> None:
        self.proc.kill()
        self.wait(10)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM: finish the batch in flight, commit it, leave the group."""
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def processed(self) -> int:
        """The records this process committed, from its last progress report (one is
        printed on every exit but SIGKILL)."""
        reports = self.logged("eos.processor: processed ")
        assert reports, self.tail()
        found = re.search(r"processed (\d+) records", reports[-1])
        assert found, reports[-1]
        return int(found.group(1))

    def partitions(self, event: str, topic: str, skip: int = 0) -> set[int]:
        """Partitions of `topic` named by this process's "assigned"/"revoked" lines."""
        pattern = re.compile(re.escape(topic) + r"\[(\d+)\]")
        lines = self.logged(f"eos.processor: {event} ")[skip:]
        return {int(p) for line in lines for p in pattern.findall(line)}

    def kill_mid_transaction(
        self, open_transaction: Callable[[], bool], timeout: float = 30
    ) -> None:
        """SIGKILL while a transaction is open with records in the log.

        A transaction lasts a fraction of a second, so the process is frozen (SIGSTOP)
        first; once the requests it had already sent are answered, an open transaction
        stays open. If one is, SIGKILL; else thaw it (SIGCONT) and try again."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"{self.name} exited early\n{self.tail()}")
            self.signal(signal.SIGSTOP)
            try:
                time.sleep(0.3)
                if open_transaction():
                    self.kill()
                    return
            finally:
                if self.alive():
                    self.signal(signal.SIGCONT)
            time.sleep(random.uniform(0.01, 0.1))
        raise AssertionError(f"never caught {self.name} inside a transaction\n{self.tail()}")


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


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, *procs: Spawned) -> None:
    """Poll `predicate`; fail at once when one of `procs` exits, or at the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        for p in procs:
            if not p.alive():
                raise AssertionError(f"{p.name} exited ({p.proc.returncode})\n{p.tail()}")
        time.sleep(0.1)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what}\n" + "\n".join(p.tail() for p in procs)
    )
