"""The processors of `eos chaos` and the faults it injects into them and the stack.

`Pool` owns the `eos run ledger` processes: it tells the exits the tool caused (SIGKILL)
from any other (a failure), and tracks how long each live, non-paused processor wrote no
log line. `Faults` runs the schedule one fault at a time: processor kills and pauses,
broker bounces, registry restarts and blocks. After each it waits until the group's lag
(`Timeline`) is back to its level before the fault, so that every recovery is measured
alone: a kill that falls inside a registry outage would measure the outage. Each kill
is recorded with the killed processor's instance id, for eos/tools/chaos_gaps.py.
"""

from __future__ import annotations

import bisect
import os
import random
import signal
import socket
import subprocess
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from eos.stack.stack import Stack, StackSpec
from eos.tools.chaos_gaps import Kill, instance_of
from eos.tools.commands import eos_command

__all__ = ["FAULT_KINDS", "FaultTiming", "Faults", "Pool", "Timeline", "Unexpected", "schedule"]

FAULT_KINDS = ("kill", "pause", "bounce", "registry-restart", "registry-block")
RESTART_AFTER = 2.0  # seconds between a processor's SIGKILL and its restart
SETTLE_MAX = 60.0  # seconds a fault's recovery is waited for before the next fault
GAP = 3.0  # seconds of steady state between one fault's recovery and the next fault
# A fault counts as recovered from only by a lag sample this long after it ended: right
# after a broker bounce the lag still looks normal while the processors' transactions
# wait on the moved coordinator, and a kill then would be charged with that stall.
SETTLED_AFTER = 8.0


@dataclass(frozen=True)
class Unexpected:
    name: str
    code: int
    tail: str


@dataclass
class _Proc:
    proc: subprocess.Popen[bytes]
    log: Path
    size: int = 0
    quiet_since: float = field(default_factory=time.monotonic)
    paused: bool = False
    killed: bool = False  # by the tool: its exit is expected


class Pool:
    """The processors, by name; every method may be called from any thread."""

    def __init__(self, logs: Path, env: dict[str, str]) -> None:
        self.logs = logs
        self.env = env
        self.procs: dict[str, _Proc] = {}
        self.unexpected: list[Unexpected] = []
        self.longest_silence = 0.0
        self.silent_name = ""
        self._lock = threading.RLock()

    def start(self, name: str) -> None:
        log = self.logs / f"processor-{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                eos_command("run", "ledger", "--startup-wait", "true"),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
            )
        with self._lock:
            self.procs[name] = _Proc(proc, log, log.stat().st_size)

    def pick(self, rng: random.Random) -> str | None:
        """A random processor that runs and is not paused."""
        with self._lock:
            ready = [n for n, p in self.procs.items() if p.proc.poll() is None and not p.paused]
        return rng.choice(sorted(ready)) if ready else None

    def kill(self, name: str) -> None:
        with self._lock:
            p = self.procs[name]
            p.killed = True
            p.proc.kill()
        p.proc.wait()

    def instance(self, name: str) -> str | None:
        """The instance id processor `name` holds (its slot's lock file names its pid)."""
        with self._lock:
            pid = self.procs[name].proc.pid
        state, group = self.env.get("EOS_STATE_DIR"), self.env.get("EOS_GROUP_ID")
        if not state or not group:
            return None
        # the group's folder under the state dir, named as eos/engine/identity.py does
        return instance_of(pid, Path(state) / quote(group, safe="-_."), socket.gethostname())

    def pause(self, name: str) -> None:
        with self._lock:
            self.procs[name].paused = True
            self.procs[name].proc.send_signal(signal.SIGSTOP)

    def resume(self, name: str) -> None:
        with self._lock:
            p = self.procs[name]
            if p.proc.poll() is None:
                p.proc.send_signal(signal.SIGCONT)
            p.paused = False
            p.quiet_since = time.monotonic()

    def check(self, now: float) -> None:
        """Records exits the tool did not cause (and restarts those processors), and the
        longest silence of a live, non-paused processor."""
        with self._lock:
            for name, p in list(self.procs.items()):
                code = p.proc.poll()
                if code is not None and not p.killed:
                    tail = "\n".join(_tail(p.log, 15))
                    self.unexpected.append(Unexpected(name, code, tail))
                    print(f"  !! processor {name} exited with {code} (not by us):\n{tail}")
                    self.start(name)
                    continue
                if code is not None or p.paused:
                    continue
                size = p.log.stat().st_size
                if size != p.size:
                    p.size, p.quiet_since = size, now
                elif now - p.quiet_since > self.longest_silence:
                    self.longest_silence = now - p.quiet_since
                    self.silent_name = name

    def stop_all(self, timeout: float = 60.0) -> dict[str, int]:
        """SIGTERM to every processor (SIGCONT first); their exit codes."""
        with self._lock:
            procs = {n: p.proc for n, p in self.procs.items()}
            for p in self.procs.values():
                p.killed = True  # from now on, exits are ours
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.send_signal(signal.SIGTERM)
        codes = {}
        for name, proc in procs.items():
            try:
                codes[name] = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = proc.wait()
        return codes

    def snapshot(self) -> dict[str, subprocess.Popen[bytes]]:
        with self._lock:
            return {n: p.proc for n, p in self.procs.items()}


class Timeline:
    """The group's lag, sampled by the monitor: (monotonic time, records behind), in time
    order. Shared between the monitor's thread (`add`) and the faults' (`latest`,
    `wait_back`); read afterwards for the kills' recoveries (`level_at`, `first_back`)."""

    def __init__(self) -> None:
        self._times: list[float] = []
        self._lags: list[int] = []
        self._lock = threading.Lock()

    def add(self, at: float, behind: int) -> None:
        with self._lock:
            self._times.append(at)
            self._lags.append(behind)

    def latest(self) -> int:
        with self._lock:
            return self._lags[-1] if self._lags else 0

    def level_at(self, at: float) -> int:
        """The lag of the last sample taken at or before `at` (0 before the first)."""
        with self._lock:
            i = bisect.bisect_right(self._times, at)
            return self._lags[i - 1] if i else 0

    def first_back(self, level: int, after: float) -> float | None:
        """When the first sample taken after `after` was at most `level`; None if none was."""
        with self._lock:
            for i in range(bisect.bisect_right(self._times, after), len(self._times)):
                if self._lags[i] <= level:
                    return self._times[i]
        return None

    def wait_back(self, level: int, after: float, timeout: float, stop: threading.Event) -> bool:
        """Until a sample taken after `after` is at most `level`; False on timeout/stop."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.first_back(level, after) is not None:
                return True
            if stop.wait(0.25):
                return False
        return False


def schedule(counts: dict[str, int], duration: float, seed: int) -> list[tuple[float, str]]:
    """The faults, shuffled, at even intervals over `duration` seconds (from 10% to 90%):
    the earliest each may start; one starts only once the one before has recovered."""
    kinds = [kind for kind in FAULT_KINDS for _ in range(counts.get(kind, 0))]
    random.Random(seed).shuffle(kinds)
    step = 0.8 * duration / max(len(kinds), 1)
    return [(0.1 * duration + i * step, kind) for i, kind in enumerate(kinds)]


@dataclass(frozen=True)
class FaultTiming:
    pause_seconds: float  # a SIGSTOP's length: longer than the session timeout
    block_seconds: float  # a registry SIGSTOP's length
    slack: int  # records of lag over the pre-fault level that still count as recovered


class Faults:
    """Runs a schedule in its own thread, one fault at a time: each is applied, undone
    (restart, SIGCONT, `up`), and then the lag is waited for (at most `SETTLE_MAX`)."""

    def __init__(
        self,
        pool: Pool,
        stack: Stack,
        spec: StackSpec,
        timing: FaultTiming,
        seed: int,
        steady: threading.Lock | None = None,
    ) -> None:
        self.pool, self.stack, self.spec, self.timing = pool, stack, spec, timing
        # held from a broker bounce until its lag is back: see chaos_gaps.Sampler.steady
        self.steady = steady or threading.Lock()
        self.rng = random.Random(seed)
        self.done: dict[str, int] = dict.fromkeys(FAULT_KINDS, 0)
        self.kills: list[Kill] = []
        self.errors: list[str] = []
        self.unsettled: list[str] = []  # faults after which the lag did not come back
        self.started: list[float] = []

    def run(self, plan: list[tuple[float, str]], timeline: Timeline, stop: threading.Event) -> None:
        started = time.monotonic()
        for at, kind in plan:
            if stop.wait(max(0.0, started + at - time.monotonic())):
                break
            level = timeline.latest() + self.timing.slack
            self.started.append(time.monotonic())
            hold: AbstractContextManager[Any] = self.steady if kind == "bounce" else nullcontext()
            with hold:
                try:
                    self._one(kind)
                except Exception as exc:  # a fault that could not be applied is a failure
                    self.errors.append(f"{kind}: {exc}")
                    print(f"  !! fault {kind} failed: {exc}", flush=True)
                    continue
                ended = time.monotonic()
                if not timeline.wait_back(level, ended + SETTLED_AFTER, SETTLE_MAX, stop):
                    if stop.is_set():
                        break
                    self.unsettled.append(kind)
                    print(
                        f"  fault {kind}: lag not back to {level:,} in {SETTLE_MAX:.0f}s",
                        flush=True,
                    )
            if stop.wait(GAP):
                break

    def _one(self, kind: str) -> None:
        if kind in ("kill", "pause"):
            name = self.pool.pick(self.rng)
            if name is None:
                print(f"  fault {kind}: no running processor, skipped", flush=True)
                return
            (self._kill if kind == "kill" else self._pause)(name)
        elif kind == "bounce":
            self._bounce()
        elif kind == "registry-restart":
            self._signal_registry(signal.SIGKILL)
            self._up("registry restarted")
        else:
            self._signal_registry(signal.SIGSTOP)
            seconds = self.timing.block_seconds
            print(f"  fault: registry SIGSTOPped for {seconds:.0f}s", flush=True)
            time.sleep(seconds)
            self._signal_registry(signal.SIGCONT)
            print("  fault: registry SIGCONTed", flush=True)
        self.done[kind] += 1

    def _kill(self, name: str) -> None:
        instance = self.pool.instance(name)
        self.kills.append(Kill(time.monotonic(), name, instance))
        self.pool.kill(name)
        print(
            f"  fault: processor {name} ({instance or 'instance unknown'}) SIGKILLed; "
            f"restart in {RESTART_AFTER:.0f}s",
            flush=True,
        )
        time.sleep(RESTART_AFTER)
        self.pool.start(name)

    def _pause(self, name: str) -> None:
        self.pool.pause(name)
        seconds = self.timing.pause_seconds
        print(f"  fault: processor {name} SIGSTOPped for {seconds:.0f}s", flush=True)
        time.sleep(seconds)
        self.pool.resume(name)
        print(f"  fault: processor {name} SIGCONTed", flush=True)

    def _bounce(self) -> None:
        brokers = [s for s in self.stack.status() if s.name.startswith("kafka-") and s.pid]
        victim = self.rng.choice(brokers)
        pid = self.stack.kill(victim.name)
        print(f"  fault: broker {victim.name} SIGKILLed (pid {pid})", flush=True)
        self._up(f"broker {victim.name} back")

    def _signal_registry(self, sig: signal.Signals) -> None:
        if sig == signal.SIGKILL:
            pid = self.stack.kill("registry")
            print(f"  fault: registry SIGKILLed (pid {pid})", flush=True)
            return
        pid = next(s.pid for s in self.stack.status() if s.name == "registry")
        if pid is None:
            raise RuntimeError("the registry is not running")
        os.kill(pid, sig)

    def _up(self, what: str) -> None:
        started = time.monotonic()
        self.stack.up(self.spec)
        print(f"  fault: {what} after {time.monotonic() - started:.1f}s", flush=True)


def _tail(path: Path, lines: int) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return []
