"""The supervisor of `eos run --processes N`, with small Python children as workers:
what it restarts, what stops everything, and that SIGTERM reaches every worker."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

from eos.ops.supervisor import Backoff, Supervisor, worker_flags

# Exits 0 on SIGTERM, as a worker that finished its batch and left.
SLEEPER = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
    "time.sleep(60)\n"
    "sys.exit(9)\n"
)


def _py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _quick() -> Backoff:
    return Backoff(initial=0.05, maximum=0.2)


def test_the_backoff_doubles_to_its_maximum_and_resets_after_a_healthy_run() -> None:
    b = Backoff(initial=1, maximum=60, healthy=60)
    assert [b.after_exit(1) for _ in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert b.after_exit(61) == 1


def test_each_worker_gets_its_own_instance_id_and_metrics_port() -> None:
    given = {"group_id": "g", "instance_id": "pay", "metrics_port": "9500", "mode": None}
    assert worker_flags(given, 2, 9500) == [
        "--group-id", "g", "--instance-id", "pay-w2", "--metrics-port", "9501",
    ]  # fmt: skip
    # no instance id given: each worker claims a free slot of the group itself
    assert worker_flags({"group_id": "g"}, 3, 0) == ["--group-id", "g", "--metrics-port", "0"]


def test_a_crashed_worker_is_restarted_and_one_done_stays_done(tmp_path: Path) -> None:
    marker = tmp_path / "crashed-once"
    crash_once = (
        f"import os, sys\nm = {str(marker)!r}\n"
        "if not os.path.exists(m):\n    open(m, 'w').close()\n    sys.exit(1)\n"
        "sys.exit(0)\n"
    )
    said: list[str] = []
    sup = Supervisor([_py(crash_once), _py("pass")], 10, said.append, _quick)
    assert sup.run() == 0
    assert [w.starts for w in sup.workers] == [2, 1]
    assert any("worker 1 exited 1; restart in" in line for line in said), said


def test_a_refused_configuration_stops_every_worker_with_exit_2() -> None:
    said: list[str] = []
    sup = Supervisor([_py(SLEEPER), _py("import sys; sys.exit(2)")], 10, said.append, _quick)
    assert sup.run() == 2
    assert sup.workers[0].exit_code == 0  # SIGTERMed, it left cleanly
    assert sup.workers[1].starts == 1  # never restarted


def test_sigterm_reaches_every_worker_and_none_is_restarted() -> None:
    sup = Supervisor([_py(SLEEPER), _py(SLEEPER)], 10, lambda _: None, _quick)
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM)).start()
    assert sup.run() == 0
    assert [(w.exit_code, w.starts) for w in sup.workers] == [(0, 1), (0, 1)]


def test_a_worker_that_ignores_sigterm_is_killed_after_the_stop_timeout() -> None:
    stubborn = (
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)\n"
    )
    sup = Supervisor([_py(stubborn)], 1.0, lambda _: None, _quick)
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM)).start()
    assert sup.run() == -signal.SIGKILL
