"""ManagedProcess: a pid is ours only when the process carries our marker.

These start short-lived `sleep`-like Python children (no Kafka, no Java).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from eos.stack.processes import ManagedProcess, port_open

SLEEPER = "import time; time.sleep(60)"


def managed(tmp_path: Path, name: str = "kafka-1", run: str = "run") -> ManagedProcess:
    return ManagedProcess(
        name=name,
        marker=f"-Deos.stack.id={tmp_path / run}/{name}",
        pid_file=tmp_path / run / f"{name}.pid",
        log_file=tmp_path / run / "logs" / f"{name}.log",
    )


@pytest.fixture
def foreign() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not ours: no marker on its command line."""
    proc = subprocess.Popen([sys.executable, "-c", SLEEPER])
    yield proc
    proc.kill()
    proc.wait()


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state == "Z"


def _wait_for_log(proc: ManagedProcess, text: str) -> None:
    """The child's output goes to its log file: wait until it printed `text`."""
    deadline = time.monotonic() + 10
    while text not in proc.log_file.read_text():
        assert time.monotonic() < deadline, f"{proc.name} never printed {text!r}"
        time.sleep(0.05)


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_no_pid_file_means_not_running_and_not_stale(tmp_path: Path) -> None:
    proc = managed(tmp_path)
    assert proc.read_pid() is None
    assert proc.running_pid() is None
    assert not proc.stale()
    assert proc.exited()
    assert proc.stop() is False


@pytest.mark.parametrize("content", ["", "not-a-pid", "\n"])
def test_unreadable_pid_file_is_stale(tmp_path: Path, content: str) -> None:
    proc = managed(tmp_path)
    proc.pid_file.parent.mkdir(parents=True)
    proc.pid_file.write_text(content)
    assert proc.read_pid() is None
    assert proc.running_pid() is None
    assert proc.stale()


def test_pid_file_of_a_dead_process_is_stale(tmp_path: Path) -> None:
    proc = managed(tmp_path)
    proc.pid_file.parent.mkdir(parents=True)
    dead = _dead_pid()
    proc.pid_file.write_text(f"{dead} {proc.marker}\n")
    assert proc.read_pid() == dead
    assert proc.running_pid() is None
    assert proc.stale()
    assert proc.stop() is False
    assert not proc.pid_file.exists()


def test_live_process_without_the_marker_is_not_ours(
    tmp_path: Path, foreign: subprocess.Popen[bytes]
) -> None:
    """A recycled pid, or someone else's process: never reported as ours, never stopped."""
    proc = managed(tmp_path)
    proc.pid_file.parent.mkdir(parents=True)
    proc.pid_file.write_text(f"{foreign.pid} {proc.marker}\n")
    assert proc.read_pid() == foreign.pid
    assert proc.running_pid() is None
    assert proc.stale()
    assert proc.stop() is False
    assert not proc.pid_file.exists()
    time.sleep(0.2)
    assert foreign.poll() is None, "stop() signalled a process it did not start"


def test_another_stacks_marker_is_not_ours(tmp_path: Path) -> None:
    theirs = managed(tmp_path, run="other-run")
    ours = managed(tmp_path, run="run")
    pid = theirs.start([sys.executable, "-c", SLEEPER, theirs.marker])
    try:
        ours.pid_file.parent.mkdir(parents=True, exist_ok=True)
        ours.pid_file.write_text(f"{pid} {ours.marker}\n")
        assert theirs.running_pid() == pid
        assert ours.running_pid() is None
        assert ours.stop() is False
        assert theirs.running_pid() == pid
    finally:
        theirs.stop(timeout=5)


def test_marker_must_be_a_whole_argument(tmp_path: Path) -> None:
    """`.../kafka-1` must not match a process started as `.../kafka-10`."""
    ours = managed(tmp_path, name="kafka-1")
    similar = managed(tmp_path, name="kafka-10")
    pid = similar.start([sys.executable, "-c", SLEEPER, similar.marker])
    try:
        ours.pid_file.write_text(f"{pid} {ours.marker}\n")
        assert ours.running_pid() is None
    finally:
        similar.stop(timeout=5)


def test_start_records_pid_and_marker_and_stop_ends_the_process(tmp_path: Path) -> None:
    proc = managed(tmp_path)
    pid = proc.start([sys.executable, "-c", "print('hello', flush=True); " + SLEEPER, proc.marker])
    try:
        assert proc.pid_file.read_text().split() == [str(pid), proc.marker]
        assert proc.running_pid() == pid
        assert not proc.stale()
        assert not proc.exited()
        _wait_for_log(proc, "hello")
    finally:
        assert proc.stop(timeout=5) is True
    assert _gone(pid)
    assert not proc.pid_file.exists()
    assert proc.running_pid() is None


def test_stop_kills_a_process_that_ignores_sigterm(tmp_path: Path) -> None:
    proc = managed(tmp_path)
    stubborn = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    pid = proc.start([sys.executable, "-c", stubborn, proc.marker])
    _wait_for_log(proc, "ready")
    started = time.monotonic()
    assert proc.stop(timeout=0.5) is True
    assert time.monotonic() - started < 5
    assert _gone(pid)


def test_exited_is_true_once_the_child_ended(tmp_path: Path) -> None:
    proc = managed(tmp_path)
    proc.start([sys.executable, "-c", "pass", proc.marker])
    deadline = time.monotonic() + 10
    while not proc.exited() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.exited()
    assert proc.running_pid() is None
    assert proc.stale()


def test_port_open_sees_a_listener_and_nothing_else() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert port_open(port)
    assert not port_open(port)


def test_kill_ends_it_at_once_and_leaves_its_pid_file(tmp_path: Path) -> None:
    """A crash, not a stop: SIGKILL even when SIGTERM is ignored, and the pid file stays
    (a restart through the stack replaces it)."""
    proc = managed(tmp_path)
    ignores_term = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    pid = proc.start([sys.executable, "-c", ignores_term + "time.sleep(60)", proc.marker])
    assert proc.running_pid() == pid
    assert proc.kill(timeout=5) == pid
    assert _gone(pid)
    assert proc.running_pid() is None
    assert proc.pid_file.exists()
    assert proc.kill() is None
