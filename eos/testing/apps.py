"""An app under test as a real process: `eos run APP` against the test cluster, with
the signals a fault test needs (SIGKILL, SIGSTOP/SIGCONT, SIGTERM), a restart, a wait
until it has caught up, and its totals read from its progress reports."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from eos.config import EngineSettings
from eos.kafka.lag import work_behind
from eos.kafka.offsets import Offsets, open_transactions
from eos.stack.cluster import KafkaCluster

__all__ = ["AppProcess", "app_env", "wait_until"]

REPORT = "eos.processor: processed "
_TOTALS = re.compile(r"(\d+) (records|outputs|dead-lettered|transactions|aborts|recoveries)")


class AppProcess:
    """One `eos run` child process; its output is drained by a thread (a full pipe
    would block it) and kept in `lines`. `start()` again after an exit restarts it with
    the same settings (the same instance id: it fences its earlier run)."""

    def __init__(
        self,
        app: str,
        env: Mapping[str, str],
        name: str = "app",
        args: Sequence[str] = (),
        command: Sequence[str] | None = None,
    ) -> None:
        self.app, self.name, self.env = app, name, dict(env)
        self.command = list(command) if command else [sys.executable, "-m", "eos", "run", app]
        self.command += list(args)
        self.lines: list[str] = []
        self.runs = 0
        self.proc: subprocess.Popen[Any] | None = None
        self._reader: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> AppProcess:
        if self.alive():
            raise RuntimeError(f"{self.name} is already running")
        self.runs += 1
        self.lines.append(f"--- {self.name}: run {self.runs} ---")
        proc = subprocess.Popen(
            self.command,
            env={**os.environ, **self.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        return self.attach(proc)

    def attach(self, proc: subprocess.Popen[Any]) -> AppProcess:
        """Watch `proc`, a process started elsewhere with its output piped (bytes or
        text)."""
        self.proc = proc
        self._reader = threading.Thread(target=self._drain, args=(proc,), daemon=True)
        self._reader.start()
        return self

    def _drain(self, proc: subprocess.Popen[Any]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
            self.lines.append(text.rstrip("\n"))

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was never started"
        return self.proc.pid

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None, f"{self.name} was never started"
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit; its exit code (negative: the signal)."""
        assert self.proc is not None, f"{self.name} was never started"
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} still running after {timeout}s\n{self.tail()}"
            ) from None
        if self._reader is not None:
            self._reader.join(5)
        return code

    def kill(self) -> None:
        """SIGKILL: no commit, no leaving the group, a transaction left open if one was."""
        self.signal(signal.SIGKILL)
        self.wait(10)

    def pause(self) -> None:
        """SIGSTOP: frozen, its heartbeats and transactions with it."""
        self.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)

    def pause_past_session_timeout(self, margin: float = 3.0) -> float:
        """SIGSTOP for its session timeout plus `margin` seconds, then SIGCONT: while it
        is frozen the group drops it and hands its partitions on; it wakes a zombie whose
        open transaction the broker must refuse. The seconds it was frozen."""
        seconds = self.session_timeout() + margin
        self.pause()
        try:
            time.sleep(seconds)
        finally:
            self.resume()
        return seconds

    def session_timeout(self) -> float:
        """Its group session timeout in seconds: `--session-timeout-ms` among its
        arguments, else EOS_SESSION_TIMEOUT_MS (its settings, then the test's
        environment), else the default."""
        if "--session-timeout-ms" in self.command:
            return int(self.command[self.command.index("--session-timeout-ms") + 1]) / 1000
        given = self.env.get("EOS_SESSION_TIMEOUT_MS") or os.environ.get("EOS_SESSION_TIMEOUT_MS")
        if given:
            return int(given) / 1000
        default = EngineSettings.model_fields["session_timeout_ms"].default
        return int(default) / 1000

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM: finish the batch in flight, commit it, leave the group; exit code."""
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def restart(self) -> AppProcess:
        if self.alive():
            self.kill()
        return self.start()

    def close(self) -> None:
        """Ends the process whatever its state (a paused one is resumed to be killed)."""
        if self.alive():
            self.resume()
            self.kill()

    # -- what it said ---------------------------------------------------------------------

    def logged(self, text: str) -> list[str]:
        return [line for line in list(self.lines) if text in line]

    def tail(self, n: int = 40) -> str:
        return f"--- {self.name} (last {n} lines) ---\n" + "\n".join(self.lines[-n:])

    def stats(self) -> dict[str, int]:
        """The totals of its last progress report (one comes every few seconds and at
        every exit but SIGKILL): records, outputs, dead-lettered, transactions, aborts,
        recoveries. Empty before the first report."""
        reports = self.logged(REPORT)
        if not reports:
            return {}
        return {kind: int(n) for n, kind in _TOTALS.findall(reports[-1])}

    # -- faults ---------------------------------------------------------------------------

    def kill_mid_transaction(
        self, cluster: KafkaCluster, topics: Iterable[str], timeout: float = 30
    ) -> None:
        """SIGKILL while a transaction of its is open on `topics` (its outputs; no other
        process may write them meanwhile). A transaction lasts a fraction of a second,
        so the process is frozen first; once the requests it had sent are answered, an
        open one stays open. If one is, SIGKILL; else thaw it and try again."""
        with Offsets(cluster.client_config(), timeout=5) as offsets:
            parts = offsets.partitions(topics)

            def open_now() -> bool:
                stable = offsets.last_stable(parts)
                return bool(open_transactions(stable, offsets.high_watermarks(parts)))

            self.kill_when(open_now, timeout)

    def kill_when(self, open_now: Callable[[], bool], timeout: float = 30) -> None:
        """SIGKILL at a moment `open_now()` says a transaction of its is open, judged
        while the process is frozen (see `kill_mid_transaction`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"{self.name} exited early\n{self.tail()}")
            self.pause()
            try:
                time.sleep(0.3)
                if open_now():
                    self.kill()
                    return
            finally:
                if self.alive():
                    self.resume()
            time.sleep(random.uniform(0.01, 0.1))
        raise AssertionError(f"never caught {self.name} inside a transaction\n{self.tail()}")

    def wait_caught_up(
        self, cluster: KafkaCluster, group: str, topics: Iterable[str], timeout: float = 120
    ) -> None:
        """Until the group's committed offsets on `topics` reach their last stable
        offsets (give or take the commit markers a transactional input carries, and
        aborted records with nothing after them: eos.kafka.lag.work_behind) and stay
        there for a second; fails at once if the process exits."""
        config = cluster.client_config()
        with Offsets(config, timeout=10) as offsets:
            parts = offsets.partitions(topics)
            last: list[int] = []

            def settled() -> bool:
                nonlocal last
                behind = work_behind(offsets, config, group, parts, stable=False)[0]
                now = [behind[tp] for tp in parts]
                done = all(b <= MARKERS for b in now) and now == last
                last = now
                return done

            wait_until(settled, timeout, f"{self.name} to catch up on {list(topics)}", self)


MARKERS = 2  # lag per partition that is commit markers, not records


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, *procs: AppProcess
) -> None:
    """Poll `predicate` every half second; fail at once when one of `procs` exits, or at
    the timeout, with their last lines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        for p in procs:
            if not p.alive():
                code = p.proc.returncode if p.proc else None
                raise AssertionError(f"{p.name} exited ({code})\n{p.tail()}")
        time.sleep(0.5)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what}\n" + "\n".join(p.tail() for p in procs)
    )


def app_env(cluster: KafkaCluster, settings: Mapping[str, Any]) -> dict[str, str]:
    """The environment of an app process on `cluster`: where it is, and `settings`
    (`group_id` or `EOS_GROUP_ID` alike). An external cluster's security settings are
    the EOS_* variables the test session runs with, which the process inherits."""
    env = {
        "EOS_BOOTSTRAP_SERVERS": cluster.bootstrap_servers,
        "EOS_SCHEMA_REGISTRY_URL": cluster.schema_registry_url,
    }
    for name, value in settings.items():
        key = name if name.isupper() else f"EOS_{name.upper()}"
        env[key] = ",".join(value) if isinstance(value, list | tuple) else str(value)
    return env
