"""`eos run --processes N`: N worker processes under one supervisor, so one command uses
every core (a Python process uses about one).

Each worker is a whole `eos run` of its own: its own group member, instance id (the
given one with `-w<i>`, else a free slot of the group on this host) and so its own
transactional id, state folder and metrics port. Exactly-once is each worker's own
business, as between processes on different hosts; the supervisor only starts, stops
and restarts them:
- SIGTERM or SIGINT: passed on to every worker, which finishes its batch, commits and
  leaves; the supervisor exits when all have (a worker still running after
  `stop_timeout` is SIGKILLed: its transaction is aborted by its successor's fencing).
- A worker that exits 0 (caught up, with --until-caught-up) is done.
- A worker that exits 2 was refused its configuration: every other would be too, so
  all stop and the supervisor exits 2.
- Any other exit (a crash, SIGKILL, a fatal error, a tripped breaker) is restarted after
  a backoff (1 s, doubling to 60 s; back to 1 s once a run lasted a minute).
- The supervisor killed outright: each worker gets SIGTERM from the kernel (Linux's
  parent-death signal), so none is left running unsupervised.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType

__all__ = ["Backoff", "Supervisor", "Worker", "worker_flags"]

EXIT_CONFIG = 2


@dataclass
class Backoff:
    """Restart delays: `initial`, doubling to `maximum`; reset after a run of `healthy` s."""

    initial: float = 1.0
    maximum: float = 60.0
    healthy: float = 60.0
    failures: int = 0

    def after_exit(self, ran_for: float) -> float:
        """The delay before the next start of a worker that ran `ran_for` seconds."""
        if ran_for >= self.healthy:
            self.failures = 0
        delay = min(self.initial * 2.0**self.failures, self.maximum)
        self.failures += 1
        return delay


@dataclass
class Worker:
    index: int
    command: list[str]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    exit_code: int | None = None  # its final code once it is done
    starts: int = 0
    backoff: Backoff = field(default_factory=Backoff)


def worker_flags(given: Mapping[str, str | None], index: int, base_metrics_port: int) -> list[str]:
    """The flags of worker `index` (1-based): the ones given, with its own instance id
    (when one was given) and metrics port (the base port + index - 1; 0 stays off)."""
    flags: list[str] = []
    for name, value in given.items():
        if value is None or name in ("instance_id", "metrics_port"):
            continue
        flags += ["--" + name.replace("_", "-"), value]
    if given.get("instance_id"):
        flags += ["--instance-id", f"{given['instance_id']}-w{index}"]
    port = 0 if base_metrics_port == 0 else base_metrics_port + index - 1
    return [*flags, "--metrics-port", str(port)]


class Supervisor:
    def __init__(
        self,
        commands: Sequence[list[str]],
        stop_timeout: float,
        say: Callable[[str], None] = print,
        backoff: Callable[[], Backoff] = Backoff,
    ) -> None:
        self.workers = [Worker(i + 1, cmd, backoff=backoff()) for i, cmd in enumerate(commands)]
        self.stop_timeout = stop_timeout
        self.say = say
        self._stopping_since: float | None = None

    def run(self) -> int:
        """Until every worker is done; the exit code (0 when every worker's was)."""
        before = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            for w in self.workers:
                self._start(w)
            while any(w.exit_code is None for w in self.workers):
                self._round(time.monotonic())
                time.sleep(0.2)
        finally:
            for sig, handler in before.items():
                signal.signal(sig, handler)
        codes = [w.exit_code for w in self.workers]
        if EXIT_CONFIG in codes:  # a refused configuration says more than the stop it caused
            return EXIT_CONFIG
        return next((code for code in codes if code), 0)

    def _round(self, now: float) -> None:
        for w in self.workers:
            self._tend(w, now)
        if self._stopping_since is not None and now - self._stopping_since > self.stop_timeout:
            self._kill_stragglers()

    def _start(self, w: Worker) -> None:
        w.proc = subprocess.Popen(w.command, preexec_fn=_die_with_parent, start_new_session=True)
        w.started_at, w.restart_at = time.monotonic(), None
        w.starts += 1
        again = f" (start {w.starts})" if w.starts > 1 else ""
        self.say(f"eos run: worker {w.index} started, pid {w.proc.pid}{again}")

    def _tend(self, w: Worker, now: float) -> None:
        if w.exit_code is not None:
            return
        if w.proc is None:  # waiting out its backoff
            if self._stopping_since is not None:
                w.exit_code = 0  # nothing runs: nothing to stop
            elif w.restart_at is not None and now >= w.restart_at:
                self._start(w)
            return
        code = w.proc.poll()
        if code is None:
            return
        w.proc = None
        if self._stopping_since is not None or code == 0:
            w.exit_code = code
            self.say(f"eos run: worker {w.index} exited {code}")
        elif code == EXIT_CONFIG:
            w.exit_code = code
            self.say(f"eos run: worker {w.index} refused its configuration; stopping all")
            self._stop_all()
        else:
            delay = w.backoff.after_exit(now - w.started_at)
            w.restart_at = now + delay
            self.say(f"eos run: worker {w.index} exited {_describe(code)}; restart in {delay:g}s")

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.say(f"eos run: {signal.Signals(signum).name}: stopping every worker")
        self._stop_all()

    def _stop_all(self) -> None:
        if self._stopping_since is None:
            self._stopping_since = time.monotonic()
        for w in self.workers:
            if w.proc is not None and w.proc.poll() is None:
                w.proc.send_signal(signal.SIGTERM)

    def _kill_stragglers(self) -> None:
        for w in self.workers:
            if w.proc is not None and w.proc.poll() is None:
                self.say(f"eos run: worker {w.index} still running; SIGKILL")
                w.proc.kill()


def _describe(code: int) -> str:
    return f"on {signal.Signals(-code).name}" if code < 0 else str(code)


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the supervisor dies (Linux only)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
