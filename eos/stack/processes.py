"""Background Java processes with pid files that name what they are.

Each process carries a `-Deos.stack.id=<id>` marker on its command line, and its pid
file holds that id. A pid is only ours when /proc shows the marker, so a recycled pid
or a stale pid file never makes `down` stop someone else's process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ManagedProcess:
    name: str
    marker: str
    pid_file: Path
    log_file: Path

    def read_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def running_pid(self) -> int | None:
        """The pid when the process we started is alive, else None."""
        pid = self.read_pid()
        if pid is None:
            return None
        return pid if _cmdline_has(pid, self.marker) else None

    def stale(self) -> bool:
        return self.pid_file.exists() and self.running_pid() is None

    def start(self, argv: list[str], cwd: Path | None = None) -> int:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=cwd,
                start_new_session=True,  # survives the shell that ran `eos stack up`
            )
        self.pid_file.write_text(f"{proc.pid} {self.marker}\n")
        return proc.pid

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM, then SIGKILL after `timeout`. Returns True when something was stopped."""
        pid = self.running_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self, timeout: float = 30.0) -> int | None:
        """SIGKILL, as a crash would end it (no shutdown, its files as they were), and
        wait until it is gone, its ports closed; its pid, or None when it was not
        running."""
        pid = self.running_pid()
        if pid is None:
            return None
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while not _reaped(pid):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} (pid {pid}) still alive {timeout}s after SIGKILL")
            time.sleep(0.1)
        return pid

    def exited(self) -> bool:
        pid = self.read_pid()
        return pid is None or not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        # Reap our own child if it already exited, so it does not linger as a zombie.
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return _signal_alive(pid)
    return state != "Z"


def _reaped(pid: int) -> bool:
    """Gone entirely. A killed JVM's main thread shows as a zombie while its other
    threads still hold its sockets; only when the last has exited is it reaped (by us
    when it is our child, else by init) and its /proc entry gone."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:
        pass
    if Path("/proc/self").exists():
        return not Path(f"/proc/{pid}").exists()
    return not _alive(pid)


def _signal_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdline_has(pid: int, marker: str) -> bool:
    if not _alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        # No /proc (macOS): fall back to `ps`.
        out = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True
        ).stdout
        return marker in out
    return marker.encode() in cmdline


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0
